"""Write operations: joining, submitting within limits, scoring outcomes, the reaper."""

from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from competitions import selectors, services
from competitions.models import Submission, Team
from tests.factories import make_competition, make_submission, make_user, perfect_submission
from workers.engine import ScoringError

pytestmark = pytest.mark.django_db


def upload(body: bytes, name: str = "preds.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, body)


def submit(user, competition, body: bytes) -> Submission:
    return services.submission_create(user=user, competition=competition, uploaded=upload(body))


def test_join_creates_a_solo_team_and_is_idempotent(learner, competition):
    first = services.competition_join(user=learner, competition=competition)
    again = services.competition_join(user=learner, competition=competition)
    assert first.pk == again.pk
    assert first.team.name == learner.username
    assert first.rules_accepted_at is not None


def test_join_refused_after_the_deadline(learner, organizer):
    competition = make_competition(organizer, deadline_in=timedelta(days=30))
    competition.deadline_at = timezone.now() - timedelta(minutes=1)
    competition.save()
    with pytest.raises(ValidationError, match="has ended"):
        services.competition_join(user=learner, competition=competition)


def test_team_name_gets_a_suffix_when_taken(competition, db):
    Team.objects.create(competition=competition, name="bea")
    team = services.competition_join(user=make_user("bea"), competition=competition).team
    assert team.name == "bea (2)"


def test_submission_requires_joining(learner, competition):
    with pytest.raises(ValidationError, match="Join the challenge"):
        submit(learner, competition, perfect_submission(competition))


def test_scoring_a_perfect_submission_gives_the_best_value(
    learner, joined, competition, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sub = submit(learner, competition, perfect_submission(competition))
    sub.refresh_from_db()
    assert sub.status == Submission.Status.SCORED, sub.error_message
    assert sub.public_score == pytest.approx(1.0)
    assert sub.private_score == pytest.approx(1.0)
    assert sub.attempts == 1
    assert sub.scored_at >= sub.started_at


def test_stored_file_uses_a_generated_name(learner, joined, competition):
    sub = submit(learner, competition, perfect_submission(competition))
    assert "preds" not in sub.file.name
    assert sub.original_name == "preds.csv"


def test_broken_file_fails_with_the_engine_message_and_is_not_charged(
    learner, joined, competition, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sub = submit(learner, competition, b"id,wrong\nr000,1\n")
    sub.refresh_from_db()
    assert sub.status == Submission.Status.FAILED
    assert "wrong" in sub.error_message
    assert selectors.submission_quota(joined.team).used_today == 0


def test_daily_limit_is_enforced_and_failed_submissions_are_not_charged(learner, organizer):
    competition = make_competition(organizer, daily_limit=2)
    team = services.competition_join(user=learner, competition=competition).team
    body = perfect_submission(competition)
    submit(learner, competition, body)
    failed = submit(learner, competition, body)
    Submission.objects.filter(pk=failed.pk).update(status=Submission.Status.FAILED, charged=False)
    submit(learner, competition, body)
    with pytest.raises(ValidationError, match="used all 2 submissions for today"):
        submit(learner, competition, body)
    assert selectors.submission_quota(team).used_today == 2


def test_yesterdays_submissions_do_not_count_today(learner, organizer):
    competition = make_competition(organizer, daily_limit=1)
    services.competition_join(user=learner, competition=competition)
    sub = submit(learner, competition, perfect_submission(competition))
    Submission.objects.filter(pk=sub.pk).update(created_at=timezone.now() - timedelta(days=1))
    submit(learner, competition, perfect_submission(competition))


def test_uncharged_failures_past_the_days_allowance_refuse_uploads_until_the_next_day(
    learner, organizer, settings
):
    competition = make_competition(organizer, daily_limit=5)
    team = services.competition_join(user=learner, competition=competition).team
    assert competition.free_failures_per_day == 10  # by default twice the daily limit
    settings.HOLDOUT_FREE_FAILURES_PER_DAY = 2
    body = perfect_submission(competition)
    yesterday = timezone.now() - timedelta(days=1)
    make_submission(competition, team, learner, status=Submission.Status.FAILED, created_at=yesterday)
    make_submission(competition, team, learner, status=Submission.Status.FAILED, charged=True)
    for _ in range(3):  # an outage: our failures, not the file's
        make_submission(competition, team, learner, status=Submission.Status.FAILED, platform_failure=True)
    make_submission(competition, team, learner, status=Submission.Status.FAILED)
    submit(learner, competition, body)  # yesterday's, charged and platform failures are not free ones today

    make_submission(competition, team, learner, status=Submission.Status.FAILED)
    quota = selectors.submission_quota(team)
    assert (quota.free_failures_today, quota.free_failures_left, quota.daily_left) == (2, 0, 3)
    assert not quota.can_submit
    with pytest.raises(ValidationError) as excinfo:
        submit(learner, competition, body)
    assert excinfo.value.messages == [
        "2 of your team's submissions failed today (UTC) without counting against your limits; "
        "2 a day is the most allowed. You can submit again from 00:00 UTC. Before that, check "
        "your file: the header id,target and one row per id."
    ]
    assert Submission.objects.filter(team=team).count() == 8


def test_total_limit(learner, organizer):
    competition = make_competition(organizer, daily_limit=5, total_limit=1)
    services.competition_join(user=learner, competition=competition)
    submit(learner, competition, perfect_submission(competition))
    with pytest.raises(ValidationError, match="allowed in this challenge"):
        submit(learner, competition, perfect_submission(competition))


def test_upload_over_the_size_limit_is_refused(learner, organizer):
    competition = make_competition(organizer, max_upload_mb=1)
    services.competition_join(user=learner, competition=competition)
    with pytest.raises(ValidationError, match="at most 1 MB"):
        submit(learner, competition, b"x" * (1024 * 1024 + 1))
    assert not Submission.objects.exists()


def test_submitting_after_the_deadline_is_refused(learner, joined, competition):
    competition.deadline_at = timezone.now() - timedelta(seconds=1)
    competition.save()
    with pytest.raises(ValidationError, match="closed"):
        submit(learner, competition, perfect_submission(competition))


def test_claim_is_exclusive(learner, joined, competition):
    sub = submit(learner, competition, perfect_submission(competition))
    assert services.submission_claim(sub.pk) == 1
    assert services.submission_claim(sub.pk) is None


def test_a_run_older_than_the_hard_limit_is_taken_over_and_cannot_write_back(
    learner, joined, competition, settings
):
    settings.CELERY_TASK_TIME_LIMIT = 60
    sub = submit(learner, competition, perfect_submission(competition))
    first = services.submission_claim(sub.pk)
    Submission.objects.filter(pk=sub.pk).update(started_at=timezone.now() - timedelta(seconds=61))
    second = services.submission_claim(sub.pk)
    assert (first, second) == (1, 2)
    # The first run was killed by the hard limit; were it somehow to report, it is ignored.
    assert services.submission_fail(sub.pk, "late news", attempt=first) is False
    assert services.submission_fail(sub.pk, "current", attempt=second) is True


def test_scoring_twice_keeps_one_result(learner, joined, competition):
    sub = submit(learner, competition, perfect_submission(competition))
    assert services.submission_score(sub.pk).status == Submission.Status.SCORED
    assert services.submission_score(sub.pk) is None
    sub.refresh_from_db()
    assert sub.attempts == 1


def test_unexpected_errors_fail_the_submission_without_charging(learner, joined, competition, monkeypatch):
    sub = submit(learner, competition, perfect_submission(competition))

    def explode(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("competitions.services.scoring.score_submission", explode)
    outcome = services.submission_score(sub.pk)
    sub.refresh_from_db()
    assert outcome.status == sub.status == Submission.Status.FAILED
    assert "problem on our side" in sub.error_message
    assert "bug" not in sub.error_message
    # Ours, not the file's: free, and not one of the team's daily free failures either.
    assert (sub.charged, sub.platform_failure) == (False, True)
    assert selectors.submission_quota(sub.team).free_failures_today == 0


def test_storage_errors_hand_the_submission_back_for_a_retry(learner, joined, competition, monkeypatch):
    sub = submit(learner, competition, perfect_submission(competition))

    def unavailable(*args, **kwargs):
        raise OSError("storage down")

    monkeypatch.setattr("competitions.services.scoring.score_submission", unavailable)
    with pytest.raises(OSError):
        services.submission_score(sub.pk)
    sub.refresh_from_db()
    assert sub.status == Submission.Status.QUEUED


def test_reaper_requeues_stuck_work_and_fails_it_after_the_budget(
    learner, joined, competition, settings, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        "competitions.services.submissions.enqueue_scoring",
        lambda pk, queue, time_limit: sent.append((pk, queue, time_limit)),
    )
    settings.HOLDOUT_STUCK_AFTER_SECONDS = 60
    settings.HOLDOUT_MAX_SCORING_ATTEMPTS = 2
    sub = submit(learner, competition, perfect_submission(competition))
    services.submission_claim(sub.pk)
    later = timezone.now() + timedelta(minutes=5)

    assert services.reap_stuck_submissions(now=timezone.now()) == {"resent": 0, "requeued": 0, "failed": 0}
    assert services.reap_stuck_submissions(now=later) == {"resent": 0, "requeued": 1, "failed": 0}
    assert sent == [(sub.pk, "scoring", competition.scoring_time_limit)]
    # Each rescue is a worker lost mid-run: the row is claimed again, then found stuck again.
    services.submission_claim(sub.pk)
    assert services.reap_stuck_submissions(now=later) == {"resent": 0, "requeued": 1, "failed": 0}
    services.submission_claim(sub.pk)
    assert services.reap_stuck_submissions(now=later) == {"resent": 0, "requeued": 0, "failed": 1}
    sub.refresh_from_db()
    assert sub.status == Submission.Status.FAILED
    assert not sub.charged
    assert "does not count against your limits" in sub.error_message


def test_a_submission_waiting_in_a_long_queue_is_resent_but_never_failed(
    learner, joined, competition, settings, monkeypatch
):
    """An hour in a queue says nothing about a lost worker: no rescue is counted, nothing fails;
    the message is only sent again (once per period) in case the broker lost it."""
    sent = []
    monkeypatch.setattr("competitions.services.submissions.enqueue_scoring", lambda pk, **kw: sent.append(pk))
    settings.HOLDOUT_STUCK_AFTER_SECONDS = 60
    settings.HOLDOUT_MAX_SCORING_ATTEMPTS = 1
    sub = submit(learner, competition, perfect_submission(competition))
    now = timezone.now()
    for minute in range(2, 62):
        services.reap_stuck_submissions(now=now + timedelta(minutes=minute))
        # The same pass run twice (two beat instances) sends nothing more.
        assert services.reap_stuck_submissions(now=now + timedelta(minutes=minute))["resent"] == 0
    sub.refresh_from_db()
    assert (sub.status, sub.requeues, sub.attempts) == (Submission.Status.QUEUED, 0, 0)
    assert sent == [sub.pk] * 30  # one re-send per 60 s period over the hour, none more
    assert services.submission_score(sub.pk).status == Submission.Status.SCORED


def test_rescoring_resets_the_rescue_budget(learner, joined, competition, settings, monkeypatch):
    monkeypatch.setattr("competitions.services.submissions.enqueue_scoring", lambda pk, **kw: None)
    settings.HOLDOUT_MAX_SCORING_ATTEMPTS = 2
    sub = submit(learner, competition, perfect_submission(competition))
    Submission.objects.filter(pk=sub.pk).update(requeues=2)  # rescued twice on its first scoring
    services.submission_score(sub.pk)
    services.submissions_rescore([sub.pk])
    sub.refresh_from_db()
    assert (sub.status, sub.requeues) == (Submission.Status.QUEUED, 0)


def _scored_then_rescoring(learner, competition, monkeypatch) -> Submission:
    monkeypatch.setattr("competitions.services.submissions.enqueue_scoring", lambda pk, **kw: None)
    sub = submit(learner, competition, perfect_submission(competition))
    assert services.submission_score(sub.pk).status == Submission.Status.SCORED
    assert services.submissions_rescore([sub.pk]) == 1
    return sub


@pytest.mark.parametrize(
    "error, reason",
    [
        (ScoringError("Column 'target' holds a value that is not a number: 'x'."), "not a number"),
        (RuntimeError("bug"), "problem on our side"),
        (SoftTimeLimitExceeded(), "s limit"),
    ],
    ids=["file now invalid", "internal error", "time limit"],
)
def test_a_rescore_that_fails_keeps_the_previous_score_and_tells_the_organizer(
    learner, joined, competition, monkeypatch, error, reason
):
    sub = _scored_then_rescoring(learner, competition, monkeypatch)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("competitions.services.scoring.score_submission", fail)
    services.submission_score(sub.pk)
    sub.refresh_from_db()
    # The learner sees the score they had, with no message.
    assert (sub.status, sub.public_score, sub.private_score) == (Submission.Status.SCORED, 1.0, 1.0)
    assert (sub.error_message, sub.charged) == ("", True)
    assert selectors.leaderboard(competition, board="public")[0].team_id == joined.team_id
    # The organizer sees the failed attempt in the history, after the result it replaced.
    notes = list(sub.history.order_by("recorded_at", "pk").values_list("status", "error_message"))
    assert [status for status, _ in notes] == [Submission.Status.SCORED, Submission.Status.FAILED]
    assert "previous score was kept" in notes[1][1] and reason in notes[1][1]


def test_a_rescore_the_reaper_gives_up_on_keeps_the_previous_score(
    learner, joined, competition, settings, monkeypatch
):
    settings.HOLDOUT_STUCK_AFTER_SECONDS = 60
    settings.HOLDOUT_MAX_SCORING_ATTEMPTS = 0
    sub = _scored_then_rescoring(learner, competition, monkeypatch)
    services.submission_claim(sub.pk)  # a worker takes it and is lost
    later = timezone.now() + timedelta(minutes=5)
    assert services.reap_stuck_submissions(now=later)["failed"] == 1
    sub.refresh_from_db()
    assert (sub.status, sub.public_score, sub.error_message) == (Submission.Status.SCORED, 1.0, "")
    assert "did not finish after several attempts" in sub.history.first().error_message


def test_a_rescore_of_a_failed_submission_can_still_fail(learner, joined, competition, monkeypatch):
    monkeypatch.setattr("competitions.services.submissions.enqueue_scoring", lambda pk, **kw: None)
    sub = submit(learner, competition, b"id,wrong\nr000,1\n")
    services.submission_score(sub.pk)
    services.submissions_rescore([sub.pk])
    services.submission_score(sub.pk)
    sub.refresh_from_db()
    assert sub.status == Submission.Status.FAILED
    assert "wrong" in sub.error_message


def test_the_reaper_never_fails_a_queued_rescore_however_long_the_queue(
    learner, joined, organizer, settings, monkeypatch
):
    """An organizer's "re-score everything" behind a long queue: every team stays on the board."""
    monkeypatch.setattr("competitions.services.submissions.enqueue_scoring", lambda pk, **kw: None)
    settings.HOLDOUT_STUCK_AFTER_SECONDS = 60
    settings.HOLDOUT_MAX_SCORING_ATTEMPTS = 1
    competition = make_competition(organizer, slug="many")
    users = [make_user(f"team{i}") for i in range(7)]
    for user in users:
        services.competition_join(user=user, competition=competition)
        services.submission_score(submit(user, competition, perfect_submission(competition)).pk)
    services.competition_rescore(competition, started_by=organizer)
    now = timezone.now()
    for minute in range(2, 30, 2):
        services.reap_stuck_submissions(now=now + timedelta(minutes=minute))
    for sub in Submission.objects.filter(competition=competition):
        assert services.submission_score(sub.pk).status == Submission.Status.SCORED
    assert len(selectors.leaderboard(competition, board="public")) == 7


def test_rescore_queues_finished_submissions(
    learner, joined, competition, eager_celery, django_capture_on_commit_callbacks
):
    sub = submit(learner, competition, perfect_submission(competition))
    services.submission_score(sub.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.submissions_rescore([sub.pk]) == 1
    sub.refresh_from_db()
    assert sub.status == Submission.Status.SCORED
    assert sub.attempts == 2


def test_sample_submission_is_generated_from_the_solution_ids(competition, learner, joined):
    data_file = services.competition_generate_sample_submission(competition)
    with data_file.file.open("rb") as fh:
        body = fh.read()
    assert body.splitlines()[0] == b"id,target"
    assert len(body.splitlines()) == 41
    assert services.submission_score(submit(learner, competition, body).pk).status == Submission.Status.SCORED


def test_reprepare_keeps_the_split(competition):
    before = competition.solution_info
    services.competition_reprepare_solution(competition)
    competition.refresh_from_db()
    assert competition.solution_info == before


def test_a_result_is_stored_even_if_the_database_drops_out_for_a_moment(
    learner, joined, competition, monkeypatch
):
    from django.db import OperationalError
    from django.db.models import QuerySet

    sub = submit(learner, competition, perfect_submission(competition))
    real_update, failures = QuerySet.update, []

    def flaky_update(self, **fields):
        if fields.get("status") == Submission.Status.SCORED and len(failures) < 2:
            failures.append(1)
            raise OperationalError("server closed the connection unexpectedly")
        return real_update(self, **fields)

    monkeypatch.setattr(QuerySet, "update", flaky_update)
    monkeypatch.setattr("competitions.services.results.STORE_RETRY_DELAYS", (0, 0, 0))
    monkeypatch.setattr(
        "competitions.services.results.connection.close", lambda: None
    )  # keep the test transaction
    monkeypatch.setattr("competitions.services.results.transaction.get_autocommit", lambda: True)
    assert services.submission_score(sub.pk).status == Submission.Status.SCORED
    sub.refresh_from_db()
    assert len(failures) == 2
    assert (sub.status, sub.public_score) == (Submission.Status.SCORED, 1.0)


def test_the_challenges_time_limit_travels_with_the_task_and_names_itself_when_hit(
    learner, joined, competition, monkeypatch
):
    sent = []
    monkeypatch.setattr("competitions.services.submissions.enqueue_scoring", lambda pk, **kw: sent.append(kw))
    competition.scoring_time_limit = 42
    competition.save()
    sub = submit(learner, competition, perfect_submission(competition))
    services.submission_enqueue(sub.pk)
    assert sent == [{"queue": "scoring", "time_limit": 42}]
    services.submission_claim(sub.pk)
    services.submission_fail_over_time(sub.pk)
    sub.refresh_from_db()
    assert sub.status == Submission.Status.FAILED
    assert "42 s limit" in sub.error_message
    assert selectors.submission_quota(joined.team).used_today == 0


def test_a_challenge_cannot_ask_for_more_time_than_the_platform_allows(competition, settings):
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 100
    competition.scoring_time_limit = 101
    with pytest.raises(ValidationError, match="at most 100 s"):
        competition.full_clean()


def test_a_team_name_taken_at_the_same_moment_is_retried(learner, competition, monkeypatch):
    # Another join took the name between our check and our insert: the unique constraint fires.
    names = iter(["lena", "lena (2)"])
    Team.objects.create(competition=competition, name="lena")
    monkeypatch.setattr(
        "competitions.services.participation.unique_team_name", lambda competition, base: next(names)
    )
    participation = services.competition_join(user=learner, competition=competition)
    assert participation.team.name == "lena (2)"


def test_a_long_username_still_gets_a_valid_team_name(competition, db):
    user = make_user("x" * 150)
    team = services.competition_join(user=user, competition=competition).team
    team.full_clean()
    assert team.name == "x" * 92
