"""Pages for Kaggle-style mechanics: the team page, invitations, team invite links, final
selection and CSV exports for participants."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from competitions import selectors, services
from competitions.csvexport import csv_attachment, write_leaderboard
from competitions.forms import InviteForm, TeamNameForm
from competitions.models import Competition, Submission, TeamInvitation
from competitions.pages import competition_page, visible_boards
from competitions.services import teams


def _fail(request: HttpRequest, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


@login_required
@require_http_methods(["GET", "POST"])
def team_page(request: HttpRequest, slug: str) -> HttpResponse:
    page = competition_page(request, slug, "team")
    competition, participation = page["competition"], page["participation"]
    if participation is None:
        return redirect("competition_rules", slug=slug)
    team = participation.team
    invite_form = InviteForm(request.POST if request.POST.get("action") == "invite" else None)
    name_form = TeamNameForm(
        request.POST if request.POST.get("action") == "rename" else None, initial={"name": team.name}
    )
    try:
        if invite_form.is_valid():
            invitation = teams.team_invite(
                inviter=request.user, team=team, username=invite_form.cleaned_data["username"]
            )
            messages.success(request, f"Invitation sent to {invitation.invitee.username}.")
            return redirect("team_page", slug=slug)
        if name_form.is_valid():
            teams.team_rename(user=request.user, competition=competition, name=name_form.cleaned_data["name"])
            messages.success(request, "Team renamed.")
            return redirect("team_page", slug=slug)
        if request.POST.get("action") == "leave":
            teams.team_leave(user=request.user, competition=competition)
            messages.success(request, "You left the team and now compete on your own.")
            return redirect("team_page", slug=slug)
    except ValidationError as exc:
        _fail(request, exc)
    page.update(
        team=team,
        members=team.memberships.select_related("user").order_by("joined_at"),
        sent=team.invitations.filter(status=TeamInvitation.Status.PENDING).select_related("invitee"),
        received=TeamInvitation.objects.filter(
            invitee=request.user, team__competition=competition, status=TeamInvitation.Status.PENDING
        ).select_related("team"),
        invite_url=request.build_absolute_uri(f"/c/{slug}/team/join/{team.invite_token}/"),
        invite_form=invite_form,
        name_form=name_form,
        merging_closed=competition.merging_closed(),
    )
    return render(request, "competitions/team.html", page)


@login_required
@require_POST
def invitation_answer(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    invitation = get_object_or_404(TeamInvitation, pk=pk, invitee=request.user, team__competition__slug=slug)
    accept = request.POST.get("answer") == "accept"
    try:
        teams.team_invitation_answer(user=request.user, invitation=invitation, accept=accept)
    except ValidationError as exc:
        _fail(request, exc)
    else:
        messages.success(request, "You joined the team." if accept else "Invitation declined.")
    return redirect("team_page", slug=slug)


@login_required
@require_http_methods(["GET", "POST"])
def team_join_link(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    competition = get_object_or_404(Competition.objects.exclude(state=Competition.State.DRAFT), slug=slug)
    team = get_object_or_404(competition.teams, invite_token=token)
    if request.method == "POST":
        try:
            teams.team_join(user=request.user, team=team, token=token)
        except ValidationError as exc:
            _fail(request, exc)
        else:
            messages.success(request, f"You are now in team {team.name}.")
            return redirect("team_page", slug=slug)
    quota = None
    mine = selectors.participation_for(request.user, competition)
    if mine:
        quota = teams.merge_quota(team, mine.team)
    return render(
        request, "competitions/team_join.html", {"competition": competition, "team": team, "quota": quota}
    )


@login_required
@require_POST
def submission_select(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    page = competition_page(request, slug, "submissions")
    if page["participation"] is None:
        raise Http404("No such submission.")
    submission = get_object_or_404(Submission, pk=pk, team=page["participation"].team)
    try:
        services.submission_set_final(
            user=request.user, submission=submission, selected=request.POST.get("selected") == "1"
        )
    except ValidationError as exc:
        _fail(request, exc)
    return redirect("competition_submissions", slug=slug)


def leaderboard_csv(request: HttpRequest, slug: str) -> HttpResponse:
    page = competition_page(request, slug, "leaderboard")
    competition = page["competition"]
    board = request.GET.get("board", "public")
    if board not in visible_boards(competition):
        raise Http404("That leaderboard is not available.")
    rows = selectors.leaderboard(competition, board=board)
    response, writer = csv_attachment(f"{competition.slug}-{board}-leaderboard.csv")
    write_leaderboard(writer, competition, rows)
    return response


@login_required
def my_submissions_csv(request: HttpRequest, slug: str) -> HttpResponse:
    page = competition_page(request, slug, "submissions")
    competition, participation = page["competition"], page["participation"]
    if participation is None:
        raise Http404("Join the challenge first.")
    show_private = competition.has_ended()
    response, writer = csv_attachment(f"{competition.slug}-my-submissions.csv")
    writer.writerow(
        ["id", "submitted_utc", "file", "description", "status", "public_score"]
        + (["private_score"] if show_private else [])
        + ["selected", "late", "error"]
    )
    for sub in selectors.team_submissions(participation.team):
        writer.writerow(
            [
                sub.pk,
                sub.created_at.isoformat(),
                sub.original_name,
                sub.description,
                sub.status,
                competition.format_score(sub.public_score),
            ]
            + ([competition.format_score(sub.private_score)] if show_private else [])
            + [sub.is_final, sub.is_late, sub.error_message]
        )
    return response
