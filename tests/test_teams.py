"""Kaggle's competition mechanics: teams, merges, final selection, late entries, ranking rules."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from competitions import selectors, services
from competitions.models import Competition, Participation, Submission, Team, TeamInvitation
from competitions.services import teams
from tests.factories import make_competition, make_submission, make_user

pytestmark = pytest.mark.django_db


def scored(competition, team, public, private, *, minutes_ago=60, user=None, **extra) -> Submission:
    user = user or Participation.objects.filter(team=team).first().user
    return make_submission(competition, team, user, public, private, hours_ago=minutes_ago / 60, **extra)


def join(name, competition) -> Participation:
    return services.competition_join(user=make_user(name), competition=competition)


def end(competition: Competition) -> None:
    Competition.objects.filter(pk=competition.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    competition.refresh_from_db()


# --- Teams ------------------------------------------------------------------------------------


def test_invitation_accepted_merges_the_invitee_into_the_team(competition):
    ann, bob = join("ann", competition), join("bob", competition)
    invitation = teams.team_invite(inviter=ann.user, team=ann.team, username="bob")
    team = teams.team_invitation_answer(user=bob.user, invitation=invitation, accept=True)
    assert set(team.memberships.values_list("user__username", flat=True)) == {"ann", "bob"}
    assert not Team.objects.filter(pk=bob.team_id).exists()
    invitation.refresh_from_db()
    assert invitation.status == TeamInvitation.Status.ACCEPTED


def test_declined_invitation_changes_nothing(competition):
    ann, bob = join("ann", competition), join("bob", competition)
    invitation = teams.team_invite(inviter=ann.user, team=ann.team, username="bob")
    assert teams.team_invitation_answer(user=bob.user, invitation=invitation, accept=False) is None
    with pytest.raises(ValidationError, match="no longer open"):
        teams.team_invitation_answer(user=bob.user, invitation=invitation, accept=True)
    assert Participation.objects.get(pk=bob.pk).team_id == bob.team_id


def test_only_the_invitee_can_answer(competition):
    ann, eve = join("ann", competition), join("eve", competition)
    join("bob", competition)
    invitation = teams.team_invite(inviter=ann.user, team=ann.team, username="bob")
    with pytest.raises(ValidationError):
        teams.team_invitation_answer(user=eve.user, invitation=invitation, accept=True)


def test_invite_link_joins_a_user_who_had_not_joined_yet(competition):
    ann = join("ann", competition)
    newcomer = make_user("nina")
    team = teams.team_join(user=newcomer, team=ann.team, token=ann.team.invite_token)
    assert Participation.objects.get(user=newcomer, competition=competition).team_id == team.pk
    with pytest.raises(ValidationError, match="not valid"):
        teams.team_join(user=make_user("zed"), team=ann.team, token="forged")


def test_team_size_limit(organizer):
    competition = make_competition(organizer, team_size_limit=2)
    ann, bob, cat = (join(n, competition) for n in ("ann", "bob", "cat"))
    teams.team_join(user=bob.user, team=ann.team, token=ann.team.invite_token)
    with pytest.raises(ValidationError, match="at most 2"):
        teams.team_join(user=cat.user, team=ann.team, token=ann.team.invite_token)


def test_leaving_is_allowed_only_until_the_team_submitted(competition):
    ann, bob = join("ann", competition), join("bob", competition)
    team = teams.team_join(user=bob.user, team=ann.team, token=ann.team.invite_token)
    solo = teams.team_leave(user=bob.user, competition=competition)
    assert solo.pk != team.pk and solo.name == "bob"
    teams.team_join(user=bob.user, team=team, token=team.invite_token)
    scored(competition, team, 0.5, 0.5)
    with pytest.raises(ValidationError, match="cannot be left"):
        teams.team_leave(user=bob.user, competition=competition)


def test_merge_quota_is_daily_limit_times_days_run(organizer):
    competition = make_competition(organizer, daily_limit=2)
    Competition.objects.filter(pk=competition.pk).update(start_at=timezone.now() - timedelta(days=1))
    competition.refresh_from_db()
    ann, bob = join("ann", competition), join("bob", competition)
    # Started yesterday: 2 days × 2 per day = 4 submissions allowed for the merged team.
    for _ in range(3):
        scored(competition, ann.team, 0.5, 0.5)
    scored(competition, bob.team, 0.5, 0.5)
    quota = teams.merge_quota(ann.team, bob.team)
    assert (quota.submissions, quota.allowed, quota.days) == (4, 4, 2)
    assert quota.ok
    scored(competition, bob.team, 0.5, 0.5)
    with pytest.raises(ValidationError, match=r"5 submissions.*2 per day × 2 days.*= 4"):
        teams.team_join(user=bob.user, team=ann.team, token=ann.team.invite_token)


def test_failed_submissions_do_not_count_towards_the_merge_quota(organizer):
    competition = make_competition(organizer, daily_limit=1)
    ann, bob = join("ann", competition), join("bob", competition)
    scored(competition, ann.team, 0.5, 0.5)
    Submission.objects.create(
        competition=competition,
        team=bob.team,
        original_name="x",
        status=Submission.Status.FAILED,
        charged=False,
    )
    assert teams.merge_quota(ann.team, bob.team).submissions == 1


def test_no_merges_after_the_merger_deadline(organizer):
    competition = make_competition(organizer, merger_deadline_at=timezone.now() - timedelta(minutes=1))
    ann, bob = join("ann", competition), join("bob", competition)
    with pytest.raises(ValidationError, match="merger deadline"):
        teams.team_join(user=bob.user, team=ann.team, token=ann.team.invite_token)


# --- Joining rules ----------------------------------------------------------------------------


def test_unlisted_challenges_need_the_invite_code(organizer):
    competition = make_competition(organizer, state=Competition.State.UNLISTED)
    user = make_user("una")
    assert competition not in Competition.objects.visible_to(user)
    with pytest.raises(ValidationError, match="invite link"):
        services.competition_join(user=user, competition=competition)
    services.competition_join(user=user, competition=competition, invite_code=competition.invite_code)
    assert competition in Competition.objects.visible_to(user)


def test_allow_list_by_address_and_domain(organizer):
    competition = make_competition(organizer, join_allowlist="teacher@school.org\n@class.edu\n")
    # Confirmed addresses: an unconfirmed one is refused before the list is read
    # (tests/test_email_confirmation.py).
    confirmed = timezone.now()
    kid = make_user("kid", email="kid@class.edu", email_verified_at=confirmed)
    services.competition_join(user=kid, competition=competition)
    with pytest.raises(ValidationError, match="restricted"):
        services.competition_join(user=make_user("eve", email_verified_at=confirmed), competition=competition)


def test_no_new_entrants_after_the_entry_deadline(organizer):
    competition = make_competition(organizer, entry_deadline_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(ValidationError, match="entry deadline"):
        join("late", competition)


def test_organizers_can_dry_run_a_draft(organizer):
    competition = make_competition(organizer, state=Competition.State.DRAFT)
    participation = services.competition_join(user=organizer, competition=competition)
    scored(competition, participation.team, 0.9, 0.9, user=organizer)
    assert selectors.public_leaderboard(competition) == []


# --- Final selection and the private board ------------------------------------------------------


def test_selection_is_limited_and_closes_at_the_deadline(organizer):
    competition = make_competition(organizer, final_submission_count=1)
    ann = join("ann", competition)
    a, b = scored(competition, ann.team, 0.8, 0.7), scored(competition, ann.team, 0.6, 0.9)
    services.submission_set_final(user=ann.user, submission=a, selected=True)
    with pytest.raises(ValidationError, match="already selected 1"):
        services.submission_set_final(user=ann.user, submission=b, selected=True)
    services.submission_set_final(user=ann.user, submission=a, selected=False)
    services.submission_set_final(user=ann.user, submission=b, selected=True)
    end(competition)
    with pytest.raises(ValidationError, match="after the deadline"):
        services.submission_set_final(user=ann.user, submission=a, selected=True)
    # The private board takes the selected submission, not the best public one.
    assert selectors.private_leaderboard(competition)[0].score == 0.9


def test_other_teams_cannot_select_my_submission(competition):
    ann, bob = join("ann", competition), join("bob", competition)
    sub = scored(competition, ann.team, 0.8, 0.7)
    with pytest.raises(ValidationError, match="Only members"):
        services.submission_set_final(user=bob.user, submission=sub, selected=True)


def test_without_a_selection_the_best_public_submissions_count(organizer):
    competition = make_competition(organizer, final_submission_count=2)
    ann = join("ann", competition)
    scored(competition, ann.team, 0.90, 0.60)
    scored(competition, ann.team, 0.85, 0.75)
    scored(competition, ann.team, 0.50, 0.99)  # third best public: not auto-selected
    assert selectors.private_leaderboard(competition) is None
    end(competition)
    (row,) = selectors.private_leaderboard(competition)
    assert row.score == 0.75


def test_private_board_shows_the_shake_up(organizer):
    competition = make_competition(organizer)
    ann, bob = join("ann", competition), join("bob", competition)
    scored(competition, ann.team, 0.9, 0.6)
    scored(competition, bob.team, 0.8, 0.7)
    end(competition)
    rows = selectors.private_leaderboard(competition)
    assert [(r.team_name, r.rank, r.public_rank, r.rank_change) for r in rows] == [
        ("bob", 1, 2, 1),
        ("ann", 2, 1, -1),
    ]


def test_equal_scores_at_display_precision_share_a_rank(organizer):
    competition = make_competition(organizer, score_precision=3)
    ann, bob, cat = (join(n, competition) for n in ("ann", "bob", "cat"))
    scored(competition, bob.team, 0.8001, 0.5, minutes_ago=30)
    scored(competition, ann.team, 0.8004, 0.5, minutes_ago=10)  # shows as 0.800 too, but later
    scored(competition, cat.team, 0.7, 0.5)
    rows = selectors.public_leaderboard(competition)
    assert [(r.rank, r.team_name) for r in rows] == [(1, "bob"), (1, "ann"), (3, "cat")]


def test_lower_is_better_metrics_rank_ascending(organizer):
    body = "id,target\n" + "".join(f"r{i},{i * 1.5}\n" for i in range(20))
    competition = make_competition(organizer, metric="rmse", solution=body.encode())
    ann, bob = join("ann", competition), join("bob", competition)
    scored(competition, ann.team, 2.0, 2.0)
    scored(competition, bob.team, 1.0, 3.0)
    assert [r.team_name for r in selectors.public_leaderboard(competition)] == ["bob", "ann"]


# --- Late submissions, baselines, disqualification ----------------------------------------------


def test_late_submissions_are_scored_but_never_touch_the_official_boards(organizer):
    competition = make_competition(organizer, late_submissions=True)
    ann = join("ann", competition)
    scored(competition, ann.team, 0.7, 0.6)
    end(competition)
    before = (selectors.public_leaderboard(competition), selectors.private_leaderboard(competition))
    late = scored(competition, ann.team, 0.99, 0.98, minutes_ago=0, is_late=True)
    assert (selectors.public_leaderboard(competition), selectors.private_leaderboard(competition)) == before
    (row,) = selectors.late_leaderboard(competition)
    assert (row.submission_id, row.score, row.other_score) == (late.pk, 0.99, 0.98)


def test_late_submission_service_marks_late_and_refuses_when_off(organizer, learner):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.factories import perfect_submission

    practice = make_competition(organizer, slug="practice", late_submissions=True)
    closed = make_competition(organizer, slug="closed")
    for c in (practice, closed):
        services.competition_join(user=learner, competition=c)
        end(c)
    sub = services.submission_create(
        user=learner, competition=practice, uploaded=SimpleUploadedFile("p.csv", perfect_submission(practice))
    )
    assert sub.is_late
    with pytest.raises(ValidationError, match="closed"):
        services.submission_create(
            user=learner, competition=closed, uploaded=SimpleUploadedFile("p.csv", perfect_submission(closed))
        )
    # A closed challenge with late submissions on is open for practice: newcomers may still join.
    services.competition_join(user=make_user("newbie"), competition=practice)


def test_baselines_are_unranked_reference_rows(organizer):
    competition = make_competition(organizer)
    ann = join("ann", competition)
    own = services.competition_join(user=organizer, competition=competition)
    scored(competition, ann.team, 0.9, 0.8)
    scored(
        competition, own.team, 0.75, 0.7, user=organizer, is_baseline=True, description="Logistic regression"
    )
    scored(competition, own.team, 0.95, 0.95, user=organizer)  # organizer entry, not a baseline: hidden
    rows = selectors.public_leaderboard(competition)
    assert [(r.rank, r.team_name, r.is_baseline) for r in rows] == [
        (1, "ann", False),
        (None, "Baseline: Logistic regression", True),
    ]
    end(competition)
    assert [r.is_baseline for r in selectors.private_leaderboard(competition)] == [False, True]


def test_disqualified_submissions_and_teams_leave_the_boards(competition):
    ann, bob = join("ann", competition), join("bob", competition)
    best = scored(competition, ann.team, 0.95, 0.9)
    scored(competition, ann.team, 0.7, 0.7)
    scored(competition, bob.team, 0.8, 0.8)
    services.submissions_mark(Submission.objects.filter(pk=best.pk), disqualified_reason="Used test labels")
    assert [(r.team_name, r.score) for r in selectors.public_leaderboard(competition)] == [
        ("bob", 0.8),
        ("ann", 0.7),
    ]
    Team.objects.filter(pk=bob.team_id).update(disqualified_reason="Multiple accounts")
    assert [r.team_name for r in selectors.public_leaderboard(competition)] == ["ann"]


def test_rescore_run_keeps_history_and_ranks(competition, eager_celery, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.factories import perfect_submission

    ann = join("ann", competition)
    with django_capture_on_commit_callbacks(execute=True):
        sub = services.submission_create(
            user=ann.user,
            competition=competition,
            uploaded=SimpleUploadedFile("p.csv", perfect_submission(competition)),
        )
    with django_capture_on_commit_callbacks(execute=True):
        run = services.competition_rescore(competition)
    assert run.ranks_before["public"] == {str(ann.team_id): 1}
    (history,) = sub.history.all()
    assert history.rescore_run == run and history.public_score == 1.0
    sub.refresh_from_db()
    assert sub.status == Submission.Status.SCORED and sub.attempts == 2
