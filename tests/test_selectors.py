"""Leaderboards and quotas, on submissions written directly with chosen scores and times."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from competitions import selectors, services
from competitions.models import Competition, Submission
from tests.factories import make_submission, make_user

SCORED, FAILED, QUEUED = Submission.Status.SCORED, Submission.Status.FAILED, Submission.Status.QUEUED


@pytest.fixture
def board_competition(db):
    """A competition without a solution: the selectors only read submission rows."""

    def make(metric: str = "roc_auc", *, ended: bool = False, **fields) -> Competition:
        now = timezone.now()
        return Competition.objects.create(
            slug=fields.pop("slug", metric.replace("_", "-")),
            title="Board",
            metric=metric,
            state=Competition.State.PUBLISHED,
            start_at=now - timedelta(days=10),
            deadline_at=now - timedelta(hours=1) if ended else now + timedelta(days=10),
            **fields,
        )

    return make


def _join(competition: Competition, username: str):
    user = make_user(username)
    return user, services.competition_join(user=user, competition=competition).team


def _join_before_end(competition: Competition, username: str):
    # competition_join refuses closed competitions; open it for the join, then close it again.
    deadline = competition.deadline_at
    Competition.objects.filter(pk=competition.pk).update(deadline_at=timezone.now() + timedelta(days=1))
    competition.refresh_from_db()
    joined = _join(competition, username)
    Competition.objects.filter(pk=competition.pk).update(deadline_at=deadline)
    competition.refresh_from_db()
    return joined


def _sub(competition, team, user, public=None, private=None, *, status=SCORED, hours_ago: float = 5):
    """A submission made `hours_ago` hours before now (before any test's deadline)."""
    return make_submission(competition, team, user, public, private, status=status, hours_ago=hours_ago)


def _ranking(rows) -> list[tuple[int, str, float]]:
    return [(row.rank, row.team_name, row.score) for row in rows]


def test_each_team_ranks_by_its_best_score_when_higher_is_better(board_competition):
    competition = board_competition("roc_auc")
    ann, ann_team = _join(competition, "ann")
    bob, bob_team = _join(competition, "bob")
    _sub(competition, ann_team, ann, 0.70, hours_ago=4)
    best = _sub(competition, ann_team, ann, 0.90, hours_ago=3)
    _sub(competition, ann_team, ann, 0.80, hours_ago=2)
    _sub(competition, bob_team, bob, 0.85)

    rows = selectors.public_leaderboard(competition)

    assert _ranking(rows) == [(1, "ann", 0.90), (2, "bob", 0.85)]
    assert rows[0].submission_id == best.pk
    assert rows[0].entries == 3
    assert rows[0].members == ["ann"]
    assert (
        rows[0].last_submitted_at == Submission.objects.filter(team=ann_team).latest("created_at").created_at
    )


def test_lower_is_better_metric_ranks_the_smallest_error_first(board_competition):
    competition = board_competition("rmse")
    ann, ann_team = _join(competition, "ann")
    bob, bob_team = _join(competition, "bob")
    _sub(competition, ann_team, ann, 0.30)
    _sub(competition, ann_team, ann, 0.25)
    _sub(competition, bob_team, bob, 0.28)

    assert _ranking(selectors.public_leaderboard(competition)) == [(1, "ann", 0.25), (2, "bob", 0.28)]


def test_equal_scores_are_ordered_by_the_earlier_submission(board_competition):
    competition = board_competition()
    ann, ann_team = _join(competition, "ann")
    bob, bob_team = _join(competition, "bob")
    _sub(competition, ann_team, ann, 0.9, hours_ago=1)
    _sub(competition, bob_team, bob, 0.9, hours_ago=2)

    # Equal displayed scores share a rank; the earlier submission is listed first.
    assert _ranking(selectors.public_leaderboard(competition)) == [(1, "bob", 0.9), (1, "ann", 0.9)]


def test_scores_equal_at_the_displayed_precision_tie(board_competition):
    competition = board_competition(score_precision=3)
    ann, ann_team = _join(competition, "ann")
    bob, bob_team = _join(competition, "bob")
    _sub(competition, ann_team, ann, 0.90004, hours_ago=1)  # shows as 0.900, like bob's
    _sub(competition, bob_team, bob, 0.9, hours_ago=2)
    cem, cem_team = _join(competition, "cem")
    _sub(competition, cem_team, cem, 0.8)

    rows = selectors.public_leaderboard(competition)
    assert [(r.rank, r.team_name) for r in rows] == [(1, "bob"), (1, "ann"), (3, "cem")]


def test_a_later_equal_score_does_not_replace_the_teams_best(board_competition):
    competition = board_competition()
    ann, ann_team = _join(competition, "ann")
    first = _sub(competition, ann_team, ann, 0.9, hours_ago=3)
    _sub(competition, ann_team, ann, 0.9, hours_ago=1)

    [row] = selectors.public_leaderboard(competition)
    assert row.submission_id == first.pk


def test_only_scored_submissions_rank_and_failed_ones_are_not_entries(board_competition):
    competition = board_competition()
    ann, ann_team = _join(competition, "ann")
    _, bob_team = _join(competition, "bob")
    _sub(competition, ann_team, ann, 0.6)
    _sub(competition, ann_team, ann, None, status=FAILED)
    _sub(competition, ann_team, ann, None, status=QUEUED)
    _sub(competition, bob_team, None, None, status=FAILED)

    [row] = selectors.public_leaderboard(competition)
    assert (row.team_name, row.entries) == ("ann", 2)  # the queued one is charged, the failed one is not


def test_organizer_and_staff_submissions_are_left_off_the_board(board_competition):
    competition = board_competition()
    ann, ann_team = _join(competition, "ann")
    host, host_team = _join(competition, "host")
    competition.organizers.add(host)
    staff, staff_team = _join(competition, "staff")
    type(staff).objects.filter(pk=staff.pk).update(is_staff=True)
    _sub(competition, ann_team, ann, 0.6)
    _sub(competition, host_team, host, 0.99)
    _sub(competition, staff_team, staff, 0.98)

    assert [row.team_name for row in selectors.public_leaderboard(competition)] == ["ann"]


def test_submissions_after_the_deadline_do_not_count(board_competition):
    competition = board_competition(ended=True)
    ann, ann_team = _join_before_end(competition, "ann")
    _sub(competition, ann_team, ann, 0.6, hours_ago=2)
    late = _sub(competition, ann_team, ann, 0.99, hours_ago=0)

    [row] = selectors.public_leaderboard(competition)
    assert row.score == 0.6
    assert row.submission_id != late.pk


def test_private_board_is_none_before_the_deadline(board_competition):
    competition = board_competition()
    ann, ann_team = _join(competition, "ann")
    _sub(competition, ann_team, ann, 0.6, 0.7)

    assert selectors.private_leaderboard(competition) is None


def _end(competition: Competition) -> None:
    Competition.objects.filter(pk=competition.pk).update(deadline_at=timezone.now() - timedelta(minutes=1))
    competition.refresh_from_db()


def test_private_board_takes_the_private_score_of_the_best_public_submission(board_competition):
    competition = board_competition(final_submission_count=1)
    ann, ann_team = _join(competition, "ann")
    bob, bob_team = _join(competition, "bob")
    _sub(competition, ann_team, ann, public=0.90, private=0.60)  # ann's best public
    _sub(competition, ann_team, ann, public=0.80, private=0.95)  # better private, but not selected
    _sub(competition, bob_team, bob, public=0.85, private=0.70)
    _end(competition)

    assert _ranking(selectors.public_leaderboard(competition)) == [(1, "ann", 0.90), (2, "bob", 0.85)]
    private = selectors.private_leaderboard(competition)
    assert _ranking(private) == [(1, "bob", 0.70), (2, "ann", 0.60)]
    assert [(r.public_rank, r.rank_change) for r in private] == [(2, 1), (1, -1)]


def test_private_board_keeps_the_best_of_the_automatic_candidates(board_competition):
    competition = board_competition(final_submission_count=2)
    ann, ann_team = _join(competition, "ann")
    _sub(competition, ann_team, ann, public=0.90, private=0.60)
    _sub(competition, ann_team, ann, public=0.80, private=0.95)  # second-best public: a candidate
    _sub(competition, ann_team, ann, public=0.70, private=0.99)  # third: not a candidate
    _end(competition)

    assert _ranking(selectors.private_leaderboard(competition)) == [(1, "ann", 0.95)]


def test_private_board_uses_the_submissions_a_team_selected(board_competition):
    competition = board_competition()
    ann, ann_team = _join(competition, "ann")
    _sub(competition, ann_team, ann, public=0.90, private=0.60)
    chosen = _sub(competition, ann_team, ann, public=0.50, private=0.55)
    Submission.objects.filter(pk=chosen.pk).update(is_final=True)
    _end(competition)

    [row] = selectors.private_leaderboard(competition)
    assert (row.score, row.submission_id) == (0.55, chosen.pk)


def test_private_board_respects_lower_is_better(board_competition):
    competition = board_competition("mae", final_submission_count=1)
    ann, ann_team = _join(competition, "ann")
    bob, bob_team = _join(competition, "bob")
    _sub(competition, ann_team, ann, public=0.10, private=0.40)
    _sub(competition, bob_team, bob, public=0.20, private=0.30)
    later = timezone.now() + timedelta(days=11)

    assert _ranking(selectors.private_leaderboard(competition, now=later)) == [
        (1, "bob", 0.30),
        (2, "ann", 0.40),
    ]


def test_quota_counts_todays_charged_submissions_and_resets_at_utc_midnight(board_competition):
    competition = board_competition(daily_limit=3, total_limit=4)
    ann, ann_team = _join(competition, "ann")
    now = datetime(2030, 5, 6, 12, 0, tzinfo=UTC)
    for hours_before, status in [(1, SCORED), (2, QUEUED), (3, FAILED), (30, SCORED)]:
        Submission.objects.create(
            competition=competition,
            team=ann_team,
            submitted_by=ann,
            file="x",
            original_name="p.csv",
            status=status,
            charged=status != FAILED,
            created_at=now - timedelta(hours=hours_before),
        )

    quota = selectors.submission_quota(ann_team, now)

    assert (quota.used_today, quota.daily_left) == (2, 1)
    assert (quota.used_total, quota.total_left) == (3, 1)
    assert quota.resets_at == datetime(2030, 5, 7, tzinfo=UTC)
    assert quota.can_submit
