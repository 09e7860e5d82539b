"""The learner's pages. Each view authorizes, validates with a form, calls one service or
selector and renders; the rules themselves live in services, selectors and models."""

import re
from pathlib import PurePosixPath

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from competitions import selectors, services, upload_limits
from competitions.email_confirmation import email_confirmation_send
from competitions.forms import JoinForm, SignupForm, SubmissionForm
from competitions.models import Competition, Submission
from competitions.pages import competition_page, visible_boards
from competitions.ratelimit import rate_limited

# Data files are only ever sent as downloads; a content type a browser will not render keeps an
# organizer's upload from becoming a page on our origin.
DOWNLOAD_CONTENT_TYPES = {".csv": "text/csv", ".zip": "application/zip", ".gz": "application/gzip"}
# Never selectors.leaderboard(reveal_private=True): that is for organizer tools only.
BOARDS = {
    "public": selectors.public_leaderboard,
    "private": selectors.private_leaderboard,  # None before the deadline
    "late": selectors.late_leaderboard,
}


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """For container health checks: the process answers and the database is reachable."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


@rate_limited("signup")
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    if request.user.is_authenticated:
        return redirect(next_url or "competition_list")
    form = SignupForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to Holdout, {user.username}! Pick a challenge and join it.")
        if email_confirmation_send(request, user):
            messages.info(request, f"We sent a link to {user.email}: open it to confirm your e-mail address.")
        else:
            messages.warning(
                request, "We could not send the confirmation e-mail; ask for it again on your profile."
            )
        return redirect(next_url or "competition_list")
    return render(request, "registration/signup.html", {"form": form, "next": next_url})


def competition_list(request: HttpRequest) -> HttpResponse:
    sections = {"active": [], "upcoming": [], "practice": [], "closed": []}
    for competition in Competition.objects.visible_to(request.user).order_by("deadline_at", "slug"):
        sections[competition.list_section].append(competition)
    sections["closed"].reverse()  # the most recently finished first
    return render(request, "competitions/competition_list.html", {"sections": sections})


def competition_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return render(request, "competitions/overview.html", competition_page(request, slug, "overview"))


def competition_data(request: HttpRequest, slug: str) -> HttpResponse:
    page = competition_page(request, slug, "data")
    page["data_files"] = page["competition"].data_files.all()
    return render(request, "competitions/data.html", page)


@login_required
def data_file_download(request: HttpRequest, slug: str, name: str) -> FileResponse:
    page = competition_page(request, slug, "data")
    if not page["can_download"]:
        raise Http404("Join the challenge to download its data.")
    data_file = get_object_or_404(page["competition"].data_files, name=name)
    suffix = PurePosixPath(data_file.name).suffix.lower()
    response = FileResponse(
        data_file.file.open("rb"),
        as_attachment=True,
        filename=data_file.name,
        content_type=DOWNLOAD_CONTENT_TYPES.get(suffix, "application/octet-stream"),
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


def competition_evaluation(request: HttpRequest, slug: str) -> HttpResponse:
    page = competition_page(request, slug, "evaluation")
    page["metric"] = page["competition"].metric_spec
    return render(request, "competitions/evaluation.html", page)


@require_http_methods(["GET", "POST"])
def competition_rules(request: HttpRequest, slug: str) -> HttpResponse:
    page = competition_page(request, slug, "rules")
    form = JoinForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if form.is_valid():
        try:
            services.competition_join(user=request.user, competition=page["competition"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "You joined the challenge. Download the data and make a submission.")
            return redirect("competition_data", slug=slug)
    page["form"] = form
    return render(request, "competitions/rules.html", page, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def competition_invite(request: HttpRequest, code: str) -> HttpResponse:
    """The invite link of an unlisted challenge: its rules and the join form, reachable before
    the challenge is visible to the user (visible_to shows it once they joined)."""
    competition = get_object_or_404(
        Competition.objects.exclude(state=Competition.State.DRAFT), invite_code=code
    )
    if selectors.participation_for(request.user, competition):
        return redirect(competition)
    if request.method == "POST" and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    form = JoinForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            services.competition_join(user=request.user, competition=competition, invite_code=code)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "You joined the challenge. Download the data and make a submission.")
            return redirect("competition_data", slug=competition.slug)
    context = {"competition": competition, "form": form}
    return render(request, "competitions/invite.html", context, status=400 if form.errors else 200)


def competition_leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    page = competition_page(request, slug, "leaderboard")
    competition = page["competition"]
    boards = visible_boards(competition)
    board = request.GET.get("board") if request.GET.get("board") in boards else next(iter(boards))
    page.update(
        board=board,
        board_label=boards[board],
        boards=boards,
        rows=BOARDS[board](competition) or [],
        metric=competition.metric_spec,
    )
    return render(request, "competitions/leaderboard.html", page)


@rate_limited("submit")
@require_http_methods(["GET", "POST"])
def competition_submit(request: HttpRequest, slug: str) -> HttpResponse:
    page = competition_page(request, slug, "submit")
    competition, participation = page["competition"], page["participation"]
    if request.method == "POST" and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    posted = request.method == "POST"
    form = SubmissionForm(
        competition, data=request.POST if posted else None, files=request.FILES if posted else None
    )
    if posted:
        upload_limits.add_upload_errors(request, form)
    if form.is_valid():
        try:
            submission = services.submission_create(
                user=request.user,
                competition=competition,
                uploaded=form.cleaned_data["file"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect(f"{reverse('competition_submissions', args=[slug])}?new={submission.pk}")
    page["form"] = form
    page["quota"] = selectors.submission_quota(participation.team) if participation else None
    return render(request, "competitions/submit.html", page, status=400 if form.errors else 200)


@login_required
def competition_submissions(request: HttpRequest, slug: str) -> HttpResponse:
    page = competition_page(request, slug, "submissions")
    participation = page["participation"]
    page.update(
        submissions=selectors.team_submissions(participation.team) if participation else [],
        new_id=_id_param(request, "new"),
        show_private=page["competition"].has_ended(),
        poll_interval_ms=settings.HOLDOUT_POLL_INTERVAL_MS,
    )
    return render(request, "competitions/submissions.html", page)


@never_cache
@require_GET
def submission_status(request: HttpRequest, slug: str, pk: int) -> JsonResponse:
    """Polled by static/js/submission-status.js. Only the submitting team may read it."""
    page = competition_page(request, slug, "submissions")
    participation = page["participation"]
    if participation is None:
        raise Http404("No such submission.")
    submission = get_object_or_404(
        Submission.objects.select_related("competition"), pk=pk, team=participation.team
    )
    return JsonResponse(_status_payload(submission))


# --- helpers ----------------------------------------------------------------------------------


def _status_payload(submission: Submission) -> dict:
    competition = submission.competition
    payload = {
        "id": submission.pk,
        "status": submission.status,
        "status_label": submission.get_status_display(),
        "finished": submission.is_finished,
        "public_score": competition.shown_score(submission.public_score),
        "public_score_display": competition.format_score(submission.public_score),
        "error_message": submission.error_message,
    }
    # Before the deadline the private score is not sent at all, not even as null: the payload
    # must not let anyone probe the hidden part of the test set.
    if submission.private_score_visible():
        payload["private_score"] = competition.shown_score(submission.private_score)
        payload["private_score_display"] = competition.format_score(submission.private_score)
    return payload


def _id_param(request: HttpRequest, name: str) -> int | None:
    """A row id from the query string, or None when it is missing or malformed. Only ASCII digits,
    and not too many: str.isdigit() accepts "²", which int() then refuses (a 500), and int()
    refuses more than 4,300 digits. A mangled link is not worth an error page."""
    raw = request.GET.get(name, "")
    return int(raw) if re.fullmatch(r"[0-9]{1,18}", raw) else None


def _safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return candidate if allowed else ""
