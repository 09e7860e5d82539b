"""Team pages, final selection and participants' CSV exports through HTTP."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from competitions import services
from competitions.models import Competition, Participation, TeamInvitation
from tests.factories import PASSWORD, make_competition, make_submission, make_user

pytestmark = pytest.mark.django_db


def login(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


def scored(competition, participation, public, private):
    return make_submission(competition, participation.team, participation.user, public, private)


def test_invite_accept_and_see_the_team(client, competition, learner, joined):
    bob = services.competition_join(user=make_user("bob"), competition=competition)
    login(client, learner)
    url = reverse("team_page", args=[competition.slug])
    response = client.post(url, {"action": "invite", "username": "bob"}, follow=True)
    assert b"Invitation sent to bob" in response.content
    invitation = TeamInvitation.objects.get()

    client.logout()
    login(client, bob.user)
    page = client.get(url)
    assert b"invites you to merge" in page.content
    client.post(reverse("invitation_answer", args=[competition.slug, invitation.pk]), {"answer": "accept"})
    assert Participation.objects.get(pk=bob.pk).team_id == joined.team_id
    assert b"lena" in client.get(url).content


def test_invite_errors_are_shown_not_raised(client, competition, learner, joined):
    login(client, learner)
    response = client.post(
        reverse("team_page", args=[competition.slug]), {"action": "invite", "username": "nobody"}, follow=True
    )
    assert response.status_code == 200
    assert "There is no user called “nobody”".encode() in response.content


def test_team_invite_link_shows_the_merge_quota_and_joins(client, competition, learner, joined):
    login(client, make_user("cat"))
    url = reverse("team_join_link", args=[competition.slug, joined.team.invite_token])
    assert b"Join lena" in client.get(url).content
    client.post(url)
    assert Participation.objects.get(user__username="cat").team_id == joined.team_id
    assert client.get(reverse("team_join_link", args=[competition.slug, "forged"])).status_code == 404


def test_final_selection_from_my_submissions(client, competition, learner, joined):
    sub = scored(competition, joined, 0.8, 0.7)
    login(client, learner)
    page = client.get(reverse("competition_submissions", args=[competition.slug]))
    assert b"Select" in page.content
    client.post(reverse("submission_select", args=[competition.slug, sub.pk]), {"selected": "1"})
    sub.refresh_from_db()
    assert sub.is_final
    # Someone else's submission cannot be selected: 404.
    other = services.competition_join(user=make_user("eve"), competition=competition)
    theirs = scored(competition, other, 0.5, 0.5)
    response = client.post(
        reverse("submission_select", args=[competition.slug, theirs.pk]), {"selected": "1"}
    )
    assert response.status_code == 404


def test_leaderboard_csv_hides_the_private_board_until_the_deadline(client, competition, learner, joined):
    scored(competition, joined, 0.8, 0.123456)
    url = reverse("leaderboard_csv", args=[competition.slug])
    public = client.get(url, {"board": "public"})
    assert public.status_code == 200
    assert public.content.decode().splitlines()[1].startswith("1,lena,lena,0.80000")
    assert client.get(url, {"board": "private"}).status_code == 404
    Competition.objects.filter(pk=competition.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    assert b"0.12346" in client.get(url, {"board": "private"}).content


def test_my_submissions_csv_is_the_teams_own(client, competition, learner, joined):
    scored(competition, joined, 0.8, 0.123456)
    login(client, learner)
    body = client.get(reverse("my_submissions_csv", args=[competition.slug])).content.decode()
    assert "0.80000" in body and "0.12346" not in body and "private_score" not in body
    client.logout()
    login(client, make_user("zed"))
    assert client.get(reverse("my_submissions_csv", args=[competition.slug])).status_code == 404


def test_timeline_shows_every_deadline(client, organizer):
    now = timezone.now()
    competition = make_competition(
        organizer, entry_deadline_at=now + timedelta(days=3), merger_deadline_at=now + timedelta(days=4)
    )
    page = client.get(reverse("competition_detail", args=[competition.slug])).content
    for label in (b"Started", b"Entry deadline", b"Team-merger deadline", b"Final deadline", b"Time left"):
        assert label in page


def test_closed_challenges_with_late_submissions_form_the_practice_library(client, organizer):
    practice = make_competition(organizer, slug="practice-me", late_submissions=True)
    closed = make_competition(organizer, slug="just-closed")
    Competition.objects.filter(pk__in=[practice.pk, closed.pk]).update(
        deadline_at=timezone.now() - timedelta(days=1)
    )
    sections = client.get(reverse("competition_list")).context["sections"]
    assert [c.slug for c in sections["practice"]] == ["practice-me"]
    assert [c.slug for c in sections["closed"]] == ["just-closed"]
