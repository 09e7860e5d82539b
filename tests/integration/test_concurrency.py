"""Races on PostgreSQL: parallel uploads against the team's limits, merges against uploads, and
merges against merges. No Celery worker: scoring is kept out of the way, so every accepted
submission stays queued and is charged.

Each contender runs in a thread of its own, hence on a database connection of its own (Django
opens one per thread; the thread closes it when it ends). Two ways to start them:

- a Barrier releases them at the same instant: a natural race, repeated for a few rounds;
- a gate makes the worst interleaving certain: the test locks the contested team rows itself,
  admits the contenders one by one (each runs until it blocks on those rows, so every read it
  makes before taking its own lock has happened), then commits, releasing them in that order.

The tests assert invariants that hold whichever side wins, never who wins.
"""

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from competitions import services
from competitions.models import Competition, Participation, Submission, Team, utc_day_start
from competitions.services import teams
from tests.factories import make_competition, make_user, perfect_submission
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

THREAD_TIMEOUT = 120
QUOTA_REFUSAL = "a merge is allowed only up to"


# --- Running contenders -----------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    result: object = None
    error: BaseException | None = None


class Contender(threading.Thread):
    """Runs `prepare()` (its own reads, before the race), then `act(prepared)`; keeps the outcome."""

    def __init__(self, name: str, act: Callable, prepare: Callable = lambda: None, barrier=None) -> None:
        super().__init__(name=name, daemon=True)
        self.act, self.prepare, self.barrier = act, prepare, barrier
        self.outcome = Outcome(name)

    def run(self) -> None:
        try:
            prepared = self.prepare()
            if self.barrier is not None:
                self.barrier.wait(timeout=THREAD_TIMEOUT)
            self.outcome.result = self.act(prepared)
        except BaseException as exc:  # noqa: BLE001 - reported to the test, which judges it
            self.outcome.error = exc
        finally:
            connection.close()  # this thread's connection, not the test's


def _join(contenders: list[Contender]) -> list[Outcome]:
    for contender in contenders:
        contender.join(THREAD_TIMEOUT)
    stuck = [c.name for c in contenders if c.is_alive()]
    assert not stuck, f"contenders still running after {THREAD_TIMEOUT} s (a deadlock?): {stuck}"
    return [c.outcome for c in contenders]


def race_at_barrier(contenders: list[tuple[str, Callable, Callable]]) -> list[Outcome]:
    barrier = threading.Barrier(len(contenders))
    threads = [Contender(name, act, prepare, barrier) for name, act, prepare in contenders]
    for thread in threads:
        thread.start()
    return _join(threads)


def _lock_waiters() -> int:
    """Backends of this test database waiting for a lock (the contenders blocked at the gate)."""
    with connection.cursor() as cursor:
        # pg_stat_activity is a snapshot for the whole transaction unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def race_at_gate(held: list[Team], contenders: list[tuple[str, Callable, Callable]]) -> list[Outcome]:
    """Hold `held` locked; admit the contenders in order, each until it blocks; release them all."""
    threads = []
    with transaction.atomic():
        list(Team.objects.select_for_update().filter(pk__in=[t.pk for t in held]).order_by("pk"))
        for name, act, prepare in contenders:
            thread = Contender(name, act, prepare)
            threads.append(thread)
            thread.start()
            wait_until(
                lambda: _lock_waiters() == sum(t.is_alive() for t in threads),
                timeout=THREAD_TIMEOUT,
                what=f"{name} to block on the held team rows",
            )
    return _join(threads)


def unexpected(outcomes: list[Outcome]) -> list[Outcome]:
    """Anything but a refusal the learner would see as a message (ValidationError)."""
    return [o for o in outcomes if o.error is not None and not isinstance(o.error, ValidationError)]


def message(error: BaseException) -> str:
    return " ".join(error.messages) if isinstance(error, ValidationError) else repr(error)


def raise_unexpected(outcomes: list[Outcome]) -> None:
    """After the invariants were checked: a leaked exception is a 500 for someone; re-raise it."""
    leaked = unexpected(outcomes)
    if leaked:
        raise leaked[0].error


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Scoring is out of the way: submissions stay queued (and charged); records what was sent."""
    sent: list[int] = []
    monkeypatch.setattr("competitions.services.submissions.enqueue_scoring", lambda pk, **_: sent.append(pk))
    return sent


def started_today(organizer, slug: str, **fields):
    # The merge quota counts the days the challenge has run; starting today makes it one day, so
    # the quota equals the daily limit.
    return make_competition(organizer, slug=slug, start_at=utc_day_start(timezone.now()), **fields)


def submit(user, competition, body: bytes | None = None) -> Submission:
    upload = SimpleUploadedFile("preds.csv", body or perfect_submission(competition))
    return services.submission_create(user=user, competition=competition, uploaded=upload)


# --- Parallel uploads over HTTP ---------------------------------------------------------------

UPLOADERS = 50


def _session_cookie(user) -> str:
    """A fresh login session of `user` (made here, in the test's thread and connection)."""
    client = Client()
    client.force_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def _browser(session_key: str, url: str) -> tuple[requests.Session, str]:
    """A real HTTP client with that session cookie, and the submit form's CSRF token."""
    browser = requests.Session()
    browser.cookies.set(django_settings.SESSION_COOKIE_NAME, session_key)
    page = browser.get(url, timeout=THREAD_TIMEOUT)
    assert page.status_code == 200, page.text[:2000]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "no CSRF token on the submit page"
    return browser, token.group(1)


@pytest.mark.parametrize(
    ("limits", "used_before", "accepted", "refusal"),
    [
        ({"daily_limit": 8}, 3, 5, "Your team has used all 8 submissions for today (UTC)."),
        (
            {"daily_limit": 100, "total_limit": 5},
            2,
            3,
            "Your team has used all 5 submissions allowed in this challenge.",
        ),
    ],
    ids=["daily-limit", "total-limit"],
)
def test_parallel_uploads_by_one_team_accept_exactly_what_is_left(
    live_server, settings, enqueued, organizer, learner, limits, used_before, accepted, refusal
):
    # 50 posts by one user from one address: the per-user rate limit would answer 429 first.
    settings.HOLDOUT_RATELIMIT_SUBMIT = ""
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain-HTTP live server
    competition = make_competition(organizer, **limits)
    team = services.competition_join(user=learner, competition=competition).team
    earlier = {submit(learner, competition).pk for _ in range(used_before)}
    path = reverse("competition_submit", args=[competition.slug])
    body = perfect_submission(competition)

    url = live_server.url + path

    def post(prepared):
        browser, token = prepared
        try:
            response = browser.post(
                url,
                data={"csrfmiddlewaretoken": token, "description": "race"},
                files={"file": ("preds.csv", body, "text/csv")},
                allow_redirects=False,
                timeout=THREAD_TIMEOUT,
            )
        finally:
            # Ends the kept-alive connection, and with it the server thread and its database
            # connection: 50 of those at once are half of PostgreSQL's default max_connections.
            browser.close()
        return response.status_code, response.headers.get("Location", ""), response.text

    # One login session per thread; the threads themselves only speak HTTP (no database).
    sessions = [_session_cookie(learner) for _ in range(UPLOADERS)]
    outcomes = race_at_barrier(
        [(f"upload-{i}", post, lambda key=key: _browser(key, url)) for i, key in enumerate(sessions)]
    )

    assert not [o for o in outcomes if o.error], [(o.name, repr(o.error)) for o in outcomes if o.error]
    statuses = Counter(status for status, _, _ in (o.result for o in outcomes))
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses == {302: accepted, 400: UPLOADERS - accepted}
    for status, _, text in (o.result for o in outcomes):
        if status == 400:
            assert refusal in text
    rows = set(Submission.objects.filter(team=team).values_list("pk", flat=True))
    assert len(rows) == used_before + accepted
    new = rows - earlier
    redirected = {
        int(re.search(r"[?&]new=(\d+)", location).group(1))
        for status, location, _ in (o.result for o in outcomes)
        if status == 302
    }
    assert redirected == new
    # Each accepted upload was sent to scoring once, after its commit; refused ones never.
    assert sorted(enqueued) == sorted(earlier | new)


# --- A merge racing with uploads of both teams -------------------------------------------------

DAILY_LIMIT = 4


@pytest.mark.parametrize(
    "schedule",
    [
        # The merge takes A, then waits for B behind the gate ahead of B's uploads, so it wins B.
        "merge-locks-first",
        # Every upload is queued on its team's row before the merge asks for either.
        "uploads-lock-first",
        "barrier",
    ],
)
def test_merge_racing_with_uploads_keeps_the_quota_and_every_submission(organizer, enqueued, schedule):
    """b accepts a merge into a's team while both teams upload twice each.

    Before: A has 2 submissions, B has 1. Started today, the challenge's merge quota is one day
    × 4 = 4: the merge is allowed if it goes first (3 ≤ 4) and refused once enough uploads landed.
    Whichever wins, afterwards no team holds more charged submissions than it may (the merged team
    no more than the quota), no submission is lost, and the members are where the merge left them.
    """
    leaked: list[Outcome] = []
    for round_ in range(5 if schedule == "barrier" else 1):
        competition = started_today(organizer, f"merge-race-{round_}", daily_limit=DAILY_LIMIT)
        a, b = make_user(f"a{round_}"), make_user(f"b{round_}")
        team_a = services.competition_join(user=a, competition=competition).team
        team_b = services.competition_join(user=b, competition=competition).team
        before = [submit(a, competition), submit(a, competition), submit(b, competition)]

        merger = (
            "merge",
            lambda team, b=b: teams.team_join(user=b, team=team),
            lambda pk=team_a.pk: Team.objects.get(pk=pk),  # as the view loads it, before the race
        )
        body = perfect_submission(competition)
        uploads = [
            (
                f"{user.username}-upload-{i}",
                lambda own, user=user, body=body: submit(user, own, body),
                # Model instances (and their open files) are not shared between threads.
                lambda pk=competition.pk: Competition.objects.get(pk=pk),
            )
            for user in (a, b)
            for i in (1, 2)
        ]
        if schedule == "merge-locks-first":
            outcomes = race_at_gate([team_b], [merger, *uploads])
        elif schedule == "uploads-lock-first":
            outcomes = race_at_gate([team_a, team_b], [*uploads, merger])
        else:
            outcomes = race_at_barrier([merger, *uploads])

        (merged,) = [o for o in outcomes if o.name == "merge"]
        upload_outcomes = [o for o in outcomes if o.name != "merge"]
        accepted = [o.result for o in upload_outcomes if o.error is None]
        for o in upload_outcomes:
            if isinstance(o.error, ValidationError):
                assert f"used all {DAILY_LIMIT} submissions for today" in message(o.error), o
        # No submission lost: a merge deletes the old team, and deleting a team cascades.
        assert Submission.objects.filter(competition=competition).count() == len(before) + len(accepted)
        members = dict(
            Participation.objects.filter(competition=competition).values_list("user_id", "team_id")
        )
        charged = Counter(
            Submission.objects.filter(competition=competition).charged().values_list("team_id", flat=True)
        )
        if merged.error is None:
            assert members == {a.pk: team_a.pk, b.pk: team_a.pk}
            assert not Team.objects.filter(pk=team_b.pk).exists()
            assert charged[team_a.pk] <= teams.merge_quota(team_a, team_a).allowed == DAILY_LIMIT
        else:
            if isinstance(merged.error, ValidationError):
                assert QUOTA_REFUSAL in message(merged.error)
            assert members == {a.pk: team_a.pk, b.pk: team_b.pk}
            assert max(charged.values()) <= DAILY_LIMIT
        for submission in accepted:
            submission.refresh_from_db()
            assert members[submission.submitted_by_id] == submission.team_id
        leaked += unexpected(outcomes)
    raise_unexpected(leaked)


# --- Two merges racing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("joins", "held"),
    [
        # Who joins whose team, in the order the gate admits them, and which solo teams it holds
        # (None: a barrier race, five rounds). The team size limit is 2, so exactly one merge can
        # succeed in every case. The gate holds the row the first contender locks last, so it
        # waits there holding the rest and the second queues behind it: the first admitted wins.
        pytest.param(
            [("y", "x"), ("x", "y")],
            "y",
            id="swap-gate",
        ),
        pytest.param(
            [("y", "x"), ("x", "y")],
            None,
            id="swap-barrier",
        ),
        pytest.param(
            [("z", "x"), ("z", "y")],
            "z",
            id="contested-gate",
        ),
        pytest.param(
            [("z", "x"), ("z", "y")],
            None,
            id="contested-barrier",
        ),
        # y's team merges into x's, then z tries to join y's (gone) team.
        pytest.param(
            [("y", "x"), ("z", "y")],
            "y",
            id="chain-merge-first-gate",
        ),
        # z joins y's team, then y's now full team may not merge into x's.
        pytest.param([("z", "y"), ("y", "x")], "z", id="chain-join-first-gate"),
        pytest.param(
            [("y", "x"), ("z", "y")],
            None,
            id="chain-barrier",
        ),
    ],
)
def test_racing_merges_leave_a_consistent_set_of_teams(organizer, joins, held):
    leaked: list[Outcome] = []
    for round_ in range(1 if held else 5):
        competition = make_competition(organizer, slug=f"merges-{round_}", team_size_limit=2)
        users = {name: make_user(f"{name}{round_}") for name in "xyz"}
        solo = {
            name: services.competition_join(user=u, competition=competition).team for name, u in users.items()
        }
        contenders = [
            (
                f"{who}-joins-{whose}",
                lambda team, user=users[who]: teams.team_join(user=user, team=team),
                # The team to join, loaded before the race as the view loads it.
                lambda pk=solo[whose].pk: Team.objects.get(pk=pk),
            )
            for who, whose in joins
        ]
        if held:
            outcomes = race_at_gate([solo[name] for name in held], contenders)
        else:
            outcomes = race_at_barrier(contenders)

        succeeded = [o for o in outcomes if o.error is None]
        assert len(succeeded) == 1, [(o.name, repr(o.error)) for o in outcomes]
        if held:
            assert succeeded[0].name == contenders[0][0], "the gate admitted another contender first"
        memberships = list(
            Participation.objects.filter(competition=competition).values_list("user_id", "team_id")
        )
        # Each user in exactly one team; every team exists, has members and fits the limit.
        assert sorted(user for user, _ in memberships) == sorted(u.pk for u in users.values())
        sizes = Counter(team for _, team in memberships)
        existing = set(Team.objects.filter(competition=competition).values_list("pk", flat=True))
        assert set(sizes) == existing, "a team without members, or a member of a deleted team"
        assert sorted(sizes.values()) == [1, competition.team_size_limit]
        assert sizes[succeeded[0].result.pk] == 2
        leaked += unexpected(outcomes)
    raise_unexpected(leaked)
