"""The learner's path through the site: sign up, browse, join, download, submit, follow scores."""

import json
import re
from datetime import UTC, timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from competitions import selectors, services
from competitions.models import Competition, DataFile, Participation, Submission, User
from competitions.templatetags.holdout import markdown
from tests.factories import PASSWORD, make_competition, make_submission, make_user, perfect_submission

# --- fixtures local to this file ------------------------------------------------------------


@pytest.fixture
def learner_client(client, learner):
    client.force_login(learner)
    return client


@pytest.fixture
def data_file(competition) -> DataFile:
    data_file = DataFile(competition=competition, name="train.csv", description="Labelled rows.")
    data_file.file.save("train.csv", ContentFile(b"id,x,target\nt1,0.5,1\n"), save=False)
    data_file.size = data_file.file.size
    data_file.save()
    return data_file


def _scored(competition, team, user, *, public: float, private: float, **extra) -> Submission:
    """A scored submission written directly, with scores chosen to be recognisable in pages."""
    return make_submission(competition, team, user, public, private, original_name="preds.csv", **extra)


def _end(competition: Competition) -> None:
    Competition.objects.filter(pk=competition.pk).update(deadline_at=timezone.now() - timedelta(minutes=1))
    competition.refresh_from_db()


def _upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


# --- accounts -------------------------------------------------------------------------------


def test_signup_creates_user_and_logs_in(client, db):
    response = client.post(
        reverse("signup"),
        {"username": "newbie", "email": "newbie@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    user = User.objects.get(username="newbie")
    assert user.email == "newbie@example.com"
    assert client.session["_auth_user_id"] == str(user.pk)
    assert "newbie" in client.get(reverse("competition_list")).content.decode()


def test_signup_applies_password_validators(client, db):
    response = client.post(
        reverse("signup"),
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "password1": "12345678",
            "password2": "12345678",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["password2"]
    assert not User.objects.filter(username="newbie").exists()


def test_signup_rejects_email_in_use_whatever_its_case(client, learner):
    response = client.post(
        reverse("signup"),
        {"username": "lena2", "email": "LENA@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 200
    assert "already exists" in response.context["form"].errors["email"][0]


def test_login_and_post_logout(client, learner):
    response = client.post(reverse("login"), {"username": "lena", "password": PASSWORD})
    assert response.status_code == 302
    assert "_auth_user_id" in client.session
    page = client.get(reverse("competition_list")).content.decode()
    assert f'action="{reverse("logout")}"' in page
    client.post(reverse("logout"))
    assert "_auth_user_id" not in client.session


def test_password_reset_flow(client, learner, mailoutbox):
    response = client.post(reverse("password_reset"), {"email": "lena@example.com"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    link = re.search(r"https?://[^/]+(/\S+)", mailoutbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"]
    new = "another-long-password-77"
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302
    learner.refresh_from_db()
    assert learner.check_password(new)


def test_staff_see_admin_link_and_admin_is_mounted(client, organizer):
    client.force_login(organizer)
    assert reverse("admin:index") in client.get(reverse("competition_list")).content.decode()
    assert client.get(reverse("admin:index")).status_code == 200


def test_healthz(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


# --- competition pages ----------------------------------------------------------------------


def test_list_groups_competitions_by_phase(client, organizer):
    now = timezone.now()
    make_competition(organizer, slug="active")
    make_competition(organizer, slug="soon", start_at=now + timedelta(days=2), deadline_in=timedelta(days=9))
    make_competition(organizer, slug="past", start_at=now - timedelta(days=9), deadline_in=timedelta(days=-1))
    sections = client.get(reverse("competition_list")).context["sections"]
    assert [c.slug for c in sections["active"]] == ["active"]
    assert [c.slug for c in sections["upcoming"]] == ["soon"]
    assert [c.slug for c in sections["closed"]] == ["past"]


def test_draft_is_404_for_learners_and_anonymous_but_visible_to_organizers(client, organizer, learner):
    make_competition(slug="draft", state=Competition.State.DRAFT)
    url = reverse("competition_detail", args=["draft"])
    assert client.get(url).status_code == 404
    client.force_login(learner)
    assert client.get(url).status_code == 404
    assert client.get(reverse("competition_leaderboard", args=["draft"])).status_code == 404
    assert "draft" not in [c.slug for c in client.get("/").context["sections"]["active"]]

    client.force_login(organizer)  # staff
    assert client.get(url).status_code == 200

    colleague = make_user("cora")  # an organizer of this competition, not staff
    Competition.objects.get(slug="draft").organizers.add(colleague)
    client.force_login(colleague)
    response = client.get(url)
    assert response.status_code == 200
    assert "only its organizers can see it" in response.content.decode()


def test_header_renders_deadline_as_utc_time_element(client, competition):
    page = client.get(reverse("competition_detail", args=[competition.slug])).content.decode()
    iso = competition.deadline_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert f'<time datetime="{iso}" data-local>' in page
    assert "js/localtime.js" in page


def test_evaluation_shows_metric_and_exact_header(client, competition):
    page = client.get(reverse("competition_evaluation", args=[competition.slug])).content.decode()
    assert "ROC AUC" in page
    assert "Higher is better" in page
    assert "<code>id,target</code>" in page


def test_overview_markdown_is_sanitised(client, organizer):
    make_competition(organizer, slug="md", overview="# Hello\n\n<script>alert(1)</script>\n\n**bold**")
    page = client.get(reverse("competition_detail", args=["md"])).content.decode()
    assert "<strong>bold</strong>" in page
    assert "alert(1)" not in page


# --- joining --------------------------------------------------------------------------------


def test_join_requires_accepting_the_rules(learner_client, learner, competition):
    url = reverse("competition_rules", args=[competition.slug])
    response = learner_client.post(url, {})
    assert response.status_code == 400
    assert "I accept the rules" in response.content.decode()
    assert not Participation.objects.filter(user=learner).exists()

    response = learner_client.post(url, {"accept_rules": "on"})
    assert response.status_code == 302
    assert Participation.objects.filter(user=learner, competition=competition).exists()


def test_unlisted_competition_is_joined_through_its_invite_link(learner_client, learner, organizer):
    competition = make_competition(organizer, slug="secret", state=Competition.State.UNLISTED)
    detail = reverse("competition_detail", args=["secret"])
    assert learner_client.get(detail).status_code == 404
    assert learner_client.get(reverse("competition_invite", args=["wrong-code"])).status_code == 404

    invite = reverse("competition_invite", args=[competition.invite_code])
    assert "I accept the rules" in learner_client.get(invite).content.decode()
    assert learner_client.post(invite, {}).status_code == 400
    response = learner_client.post(invite, {"accept_rules": "on"})
    assert response.status_code == 302
    assert Participation.objects.filter(user=learner, competition=competition).exists()
    assert learner_client.get(detail).status_code == 200
    assert learner_client.get(invite).url == detail  # already joined: straight to the challenge


def test_anonymous_join_goes_to_login(client, competition):
    response = client.post(reverse("competition_rules", args=[competition.slug]), {"accept_rules": "on"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_joining_a_closed_competition_shows_the_reason(learner_client, competition):
    _end(competition)
    response = learner_client.post(
        reverse("competition_rules", args=[competition.slug]), {"accept_rules": "on"}
    )
    # The page no longer offers the form, but a stale form posted anyway gets the service's answer.
    assert response.status_code == 400
    assert "can no longer be joined" in response.content.decode()


# --- data -----------------------------------------------------------------------------------


def test_participant_downloads_data_as_attachment(learner_client, joined, data_file):
    response = learner_client.get(
        reverse("data_file_download", args=[data_file.competition.slug, "train.csv"])
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="train.csv"'
    assert response["Content-Type"] == "text/csv"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == b"id,x,target\nt1,0.5,1\n"


def test_data_download_is_404_for_outsiders_and_redirects_anonymous(client, outsider, data_file):
    url = reverse("data_file_download", args=[data_file.competition.slug, "train.csv"])
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    page = client.get(reverse("competition_data", args=[data_file.competition.slug])).content.decode()
    assert "Join the challenge" in page
    assert url not in page


def test_organizer_downloads_without_joining(client, organizer, data_file):
    client.force_login(organizer)
    url = reverse("data_file_download", args=[data_file.competition.slug, "train.csv"])
    assert client.get(url).status_code == 200


def test_solution_is_never_downloadable(client, organizer, competition):
    client.force_login(organizer)
    for name in ("solution.csv", competition.solution.name.rsplit("/", 1)[-1]):
        assert client.get(reverse("data_file_download", args=[competition.slug, name])).status_code == 404


# --- submitting -----------------------------------------------------------------------------


def test_submit_happy_path_is_scored_and_on_the_leaderboard(
    learner_client, joined, competition, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = learner_client.post(
            reverse("competition_submit", args=[competition.slug]),
            {"file": _upload("preds.csv", perfect_submission(competition)), "description": "exact"},
        )
    submission = Submission.objects.get(team=joined.team)
    assert response.status_code == 302
    assert (
        response.url == f"{reverse('competition_submissions', args=[competition.slug])}?new={submission.pk}"
    )
    assert submission.status == Submission.Status.SCORED
    assert submission.public_score == 1.0

    page = learner_client.get(response.url).content.decode()
    assert f'id="submission-{submission.pk}" class="is-new"' in page
    assert "submission-status.js" in page

    board = learner_client.get(reverse("competition_leaderboard", args=[competition.slug]))
    [row] = board.context["rows"]
    assert (row.team_name, row.rank, row.entries) == ("lena", 1, 1)
    assert 'class="is-mine"' in board.content.decode()
    assert "1.00000" in board.content.decode()


def test_broken_file_fails_with_the_engine_message_and_costs_no_quota(
    learner_client, joined, competition, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        learner_client.post(
            reverse("competition_submit", args=[competition.slug]),
            {"file": _upload("preds.csv", b"wrong,header\nr000,1\n")},
        )
    submission = Submission.objects.get(team=joined.team)
    assert submission.status == Submission.Status.FAILED
    assert submission.error_message
    page = learner_client.get(reverse("competition_submissions", args=[competition.slug])).content.decode()
    assert escape(submission.error_message) in page
    assert selectors.submission_quota(joined.team).used_today == 0


def test_daily_limit_reached_is_a_form_error(learner_client, learner, organizer):
    competition = make_competition(organizer, slug="limited", daily_limit=1)
    services.competition_join(user=learner, competition=competition)
    url = reverse("competition_submit", args=[competition.slug])
    first = learner_client.post(url, {"file": _upload("a.csv", perfect_submission(competition))})
    assert first.status_code == 302  # stays queued: on_commit never fires inside the test transaction

    second = learner_client.post(url, {"file": _upload("b.csv", perfect_submission(competition))})
    assert second.status_code == 400
    assert "used all 1 submissions for today" in second.content.decode()
    assert Submission.objects.filter(competition=competition).count() == 1

    page = learner_client.get(url).content.decode()
    assert "0 of 1" in page
    assert 'type="file"' not in page


def test_free_failures_are_stated_on_the_rules_and_their_end_on_the_submit_page(
    learner_client, learner, organizer, settings
):
    settings.HOLDOUT_FREE_FAILURES_PER_DAY = 1
    competition = make_competition(organizer, slug="fragile")
    team = services.competition_join(user=learner, competition=competition).team
    rules = learner_client.get(reverse("competition_rules", args=[competition.slug])).content.decode()
    assert "Failed submissions that do not count are free up to 1 per team per day (UTC)" in rules

    make_submission(competition, team, learner, status=Submission.Status.FAILED)
    url = reverse("competition_submit", args=[competition.slug])
    page = learner_client.get(url).content.decode()
    assert "1 of your team's submissions failed today" in page
    assert 'type="file"' not in page
    refused = learner_client.post(url, {"file": _upload("a.csv", perfect_submission(competition))})
    assert refused.status_code == 400
    assert "1 a day is the most allowed" in refused.content.decode()


@pytest.mark.parametrize(
    ("name", "size_mb", "message"),
    [("preds.txt", 0, "Upload a .csv file"), ("preds.csv", 2, "is larger than 1.0 MB")],
)
def test_form_rejects_wrong_names_and_oversized_files(
    learner_client, learner, organizer, name, size_mb, message
):
    competition = make_competition(organizer, slug="small", max_upload_mb=1)
    services.competition_join(user=learner, competition=competition)
    content = b"id,target\n" + b"x" * (size_mb * 1024 * 1024)
    response = learner_client.post(
        reverse("competition_submit", args=[competition.slug]), {"file": _upload(name, content)}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Submission.objects.exists()


def test_submit_page_asks_outsiders_to_join(client, outsider, competition):
    client.force_login(outsider)
    page = client.get(reverse("competition_submit", args=[competition.slug])).content.decode()
    assert "Join the challenge" in page
    assert 'type="file"' not in page
    response = client.post(
        reverse("competition_submit", args=[competition.slug]),
        {"file": _upload("p.csv", perfect_submission(competition))},
    )
    assert response.status_code == 400
    assert "Join the challenge (and accept its rules)" in response.content.decode()


def test_submit_page_shows_quota_and_reset_time(learner_client, joined, competition):
    page = learner_client.get(reverse("competition_submit", args=[competition.slug])).content.decode()
    assert "5 of 5" in page
    reset = selectors.next_utc_midnight(timezone.now()).isoformat().replace("+00:00", "Z")
    assert f'<time datetime="{reset}" data-local>' in page


# --- status JSON and private scores ---------------------------------------------------------


def test_status_json_and_pages_hide_private_score_until_the_deadline(
    learner_client, learner, joined, competition
):
    submission = _scored(competition, joined.team, learner, public=0.8111111, private=0.7333333)
    status_url = reverse("submission_status", args=[competition.slug, submission.pk])

    data = learner_client.get(status_url).json()
    assert data["status"] == "scored"
    assert data["finished"] is True
    assert data["public_score_display"] == "0.81111"
    assert "private_score" not in data
    pages = [
        status_url,
        reverse("competition_submissions", args=[competition.slug]),
        reverse("competition_leaderboard", args=[competition.slug]),
        reverse("competition_leaderboard", args=[competition.slug]) + "?board=private",
    ]
    for url in pages:
        body = learner_client.get(url).content.decode()
        assert "0.7333" not in body, url

    _end(competition)
    data = learner_client.get(status_url).json()
    assert data["private_score"] == 0.73333  # at the display precision, like every score shown
    assert data["private_score_display"] == "0.73333"
    assert "0.73333" in learner_client.get(pages[1]).content.decode()


def test_status_json_of_another_team_is_404(client, learner, outsider, joined, competition):
    submission = _scored(competition, joined.team, learner, public=0.5, private=0.5)
    url = reverse("submission_status", args=[competition.slug, submission.pk])
    assert client.get(url).status_code == 404  # anonymous
    client.force_login(outsider)
    assert client.get(url).status_code == 404  # not joined
    services.competition_join(user=outsider, competition=competition)
    assert client.get(url).status_code == 404  # joined, other team


@pytest.mark.parametrize("value", ["²", "٣", "1.5", "-1", "abc", "9" * 5000, ""])
def test_a_malformed_new_parameter_is_ignored(learner_client, learner, joined, competition, value):
    # "²".isdigit() is True but int("²") raises, and int() refuses 5,000 digits: both were 500s.
    submission = make_submission(competition, joined.team, learner, 0.9, 0.8)
    url = reverse("competition_submissions", args=[competition.slug])
    response = learner_client.get(url, {"new": value})
    assert response.status_code == 200
    assert response.context["new_id"] is None
    assert learner_client.get(url, {"new": str(submission.pk)}).context["new_id"] == submission.pk


def test_status_json_reports_queued_then_failure_message(learner_client, learner, joined, competition):
    submission = Submission.objects.create(
        competition=competition, team=joined.team, submitted_by=learner, file="x", original_name="p.csv"
    )
    url = reverse("submission_status", args=[competition.slug, submission.pk])
    assert learner_client.get(url).json()["finished"] is False
    Submission.objects.filter(pk=submission.pk).update(status="failed", error_message="Missing column 'id'.")
    data = json.loads(learner_client.get(url).content)
    assert (data["status"], data["error_message"], data["finished"]) == (
        "failed",
        "Missing column 'id'.",
        True,
    )


# --- leaderboard ----------------------------------------------------------------------------


def test_leaderboard_states_the_tie_rule(client, competition):
    page = client.get(reverse("competition_leaderboard", args=[competition.slug])).content.decode()
    assert (
        "Equal scores (at the precision shown) share a rank; the earlier submission is listed first." in page
    )


def test_private_board_is_shown_first_after_the_deadline(client, learner, outsider, competition):
    lena = services.competition_join(user=learner, competition=competition)
    otto = services.competition_join(user=outsider, competition=competition)
    _scored(competition, lena.team, learner, public=0.9, private=0.6)
    _scored(competition, otto.team, outsider, public=0.8, private=0.7)
    url = reverse("competition_leaderboard", args=[competition.slug])
    before = client.get(url)
    assert before.context["board"] == "public"
    assert [r.team_name for r in before.context["rows"]] == ["lena", "otto"]
    assert 'href="?board=public"' not in before.content.decode()  # no board switcher yet

    _end(competition)
    after = client.get(url)
    assert after.context["board"] == "private"
    assert [(r.team_name, r.score) for r in after.context["rows"]] == [("otto", 0.7), ("lena", 0.6)]
    assert "▲" in after.content.decode()  # otto moved up from the public board
    public = client.get(url + "?board=public")
    assert public.context["board"] == "public"
    assert [r.team_name for r in public.context["rows"]] == ["lena", "otto"]


def test_baseline_rows_are_unranked_and_never_the_viewers(client, organizer, learner, competition):
    lena = services.competition_join(user=learner, competition=competition)
    _scored(competition, lena.team, learner, public=0.7, private=0.7)
    host = services.competition_join(user=organizer, competition=competition)
    _scored(
        competition, host.team, organizer, public=0.8, private=0.8, is_baseline=True, description="Logistic"
    )

    board = client.get(reverse("competition_leaderboard", args=[competition.slug]))
    baseline, row = board.context["rows"]
    assert (baseline.is_baseline, baseline.rank, row.team_name, row.rank) == (True, None, "lena", 1)
    page = board.content.decode()
    assert "is-mine" not in page  # anonymous: no team, and a baseline's missing team is not theirs
    assert 'class="is-baseline"' in page


@pytest.mark.parametrize(("late_allowed", "expected"), [(True, "late"), (False, "private")])
def test_late_board_is_offered_only_when_late_submissions_are_on(client, organizer, late_allowed, expected):
    competition = make_competition(organizer, slug="late", late_submissions=late_allowed)
    _end(competition)
    response = client.get(reverse("competition_leaderboard", args=[competition.slug]) + "?board=late")
    assert response.context["board"] == expected
    assert ("?board=late" in response.content.decode()) is late_allowed


def test_late_submissions_keep_the_submit_form_after_the_deadline(learner_client, learner, organizer):
    competition = make_competition(organizer, slug="late", late_submissions=True)
    _end(competition)
    services.competition_join(user=learner, competition=competition)
    page = learner_client.get(reverse("competition_submit", args=[competition.slug])).content.decode()
    assert 'type="file"' in page
    assert "Late submissions are still scored for practice" in page


# --- markdown filter ------------------------------------------------------------------------


def test_markdown_filter_strips_scripts_and_dangerous_attributes():
    html = markdown(
        "Hi <script>alert('x')</script> [link](javascript:alert(1)) "
        '<img src="x" onerror="alert(2)"> <a href="https://example.com" onclick="x()">ok</a>\n\n'
        "| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<script" not in html
    assert "alert" not in html
    assert "onclick" not in html
    assert "javascript:" not in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">ok</a>' in html
    assert "<table>" in html
