"""Hidden data never leaves: a crawler walks the site as a visitor and as a participant.

The challenge has a solution whose ids, targets and public/private assignment are all
recognisable strings, and scored submissions whose private scores are values that cannot appear
by accident. Every page reachable by links and forms (GET), plus a list of URLs worth guessing
(admin, exports, other people's submissions, the API, storage paths), is fetched; no response may
contain any of it before the deadline. After the deadline the participant does see the private
scores, which shows that the crawler reaches the pages where they would appear.
"""

import io
import re
import zipfile
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from html import unescape
from pathlib import PurePosixPath
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from competitions import services
from competitions.models import Competition, DataFile, Submission
from tests.factories import make_competition, make_user

MAX_FETCHES = 400
SLUG = "hidden"
# Distinctive ids: none of them may show up anywhere (no sample submission is published here, so
# ids have no legitimate reason to appear either). Every id says nothing about its split.
IDS = [f"qv7k{n:02d}w" for n in range(24)]
PUBLIC = {i for n, i in enumerate(IDS) if n % 3 == 0}
TARGETS = [1 if n % 4 in (0, 1) else 0 for n in range(24)]
SOLUTION_NAME = "answer-key-zq31.csv"
# Private scores (per learner) and public scores chosen so that none can be confused.
SCORES = {
    "lena": [(0.6123456789, 0.9753186421), (0.6234567891, 0.8642097531)],
    "mia": [(0.6345678912, 0.7531986420)],
}
PRIVATE_SCORES = [private for subs in SCORES.values() for _, private in subs]


def solution_csv() -> bytes:
    lines = [f"{i},{t},{'Public' if i in PUBLIC else 'Private'}" for i, t in zip(IDS, TARGETS, strict=True)]
    return ("id,target,Usage\n" + "\n".join(lines) + "\n").encode()


@dataclass
class World:
    competition: Competition
    lena: object
    mia: object
    subs: dict[str, list[Submission]] = field(default_factory=dict)


@pytest.fixture
def world(organizer) -> World:
    competition = make_competition(organizer, slug=SLUG, solution=solution_csv())
    competition.solution_name = SOLUTION_NAME
    competition.save(update_fields=["solution_name"])
    assert competition.solution_info["split_source"] == "usage_column"
    data = DataFile(competition=competition, name="train.csv", description="Features only.")
    data.file.save("train.csv", ContentFile(b"feature,label\n0.1,1\n0.2,0\n"), save=False)
    data.save()
    world = World(competition, make_user("lena"), make_user("mia"))
    for user in (world.lena, world.mia):
        team = services.competition_join(user=user, competition=competition).team
        world.subs[user.username] = []
        for n, (public, private) in enumerate(SCORES[user.username]):
            sub = Submission(
                competition=competition,
                team=team,
                submitted_by=user,
                original_name=f"{user.username}-{n}.csv",
                description=f"model {n}",
                status=Submission.Status.SCORED,
                public_score=public,
                private_score=private,
                created_at=timezone.now() - timedelta(hours=2 - n),
                scored_at=timezone.now(),
            )
            sub.file.save("upload", ContentFile(b"id,target\n"), save=False)
            sub.save()
            world.subs[user.username].append(sub)
    return world


# --- what must never appear --------------------------------------------------------------------


def private_score_texts(competition: Competition) -> list[str]:
    texts = []
    for score in PRIVATE_SCORES:
        texts += [competition.format_score(score), repr(score), f"{score:.4f}", f"{score:.3f}"]
    return texts


def forbidden(competition: Competition) -> dict[str, str]:
    """Text that would reveal hidden data -> what it would reveal."""
    csv_text = solution_csv().decode()
    found = {csv_text: "the solution file", "Usage": "the Usage column"}
    for line in csv_text.splitlines()[1:]:
        found[line] = "a solution row"
    for i in IDS:
        found[i] = "a test id (and with it, possibly its split)"
    found["".join(map(str, TARGETS))] = "the target sequence"
    found[",".join(map(str, TARGETS))] = "the target sequence"
    public_ids = [i for i in IDS if i in PUBLIC]
    found[",".join(public_ids)] = "the public ids"
    for stored in (competition.solution.name, competition.prepared_solution.name):
        found[stored] = "a stored solution path"
        found[PurePosixPath(stored).stem] = "a stored solution file name"
    found[SOLUTION_NAME] = "the solution's original name"
    for text in private_score_texts(competition):
        found[text] = "a private score"
    return found


# A JSON private score with a value (the API may send the field as null before the deadline).
PRIVATE_SCORE_VALUE = re.compile(r'"private_score(_display)?"\s*:\s*"?-?\d')


# --- the crawler -------------------------------------------------------------------------------

LINK = re.compile(r"""(?:href|action|src|data-status-url)\s*=\s*["']([^"']+)["']""", re.I)
SKIP = ("/static/", "mailto:", "javascript:", "tel:")


@dataclass
class Crawl:
    fetched: dict[str, int] = field(default_factory=dict)
    bodies: dict[str, str] = field(default_factory=dict)


def _same_site(url: str) -> str | None:
    url = urldefrag(unescape(url)).url
    parts = urlsplit(url)
    if parts.scheme and parts.netloc not in ("testserver",):
        return None
    if url.startswith("//") or url.startswith(SKIP) or not url:
        return None
    if "next%3D" in parts.query or "next%253D" in parts.query:
        return None  # login?next=login?next=...: the same page again and again
    path = parts.path or "/"
    return path + (f"?{parts.query}" if parts.query else "")


def _text(response) -> str:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    pieces = [raw.decode("utf-8", "replace")]
    if raw.startswith(b"PK"):
        # A zip download: look inside it too.
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            pieces += [zf.read(n).decode("utf-8", "replace") for n in zf.namelist()]
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    return headers + "\n" + "\n".join(pieces)


def crawl(client: Client, start: list[str]) -> Crawl:
    result = Crawl()
    queue = deque(start)
    while queue and len(result.fetched) < MAX_FETCHES:
        url = queue.popleft()
        if url in result.fetched or "/logout/" in url:
            continue
        response = client.get(url)
        result.fetched[url] = response.status_code
        text = _text(response)
        result.bodies[url] = text
        assert response.status_code < 500, f"{url} answered {response.status_code}"
        targets = [response["Location"]] if response.has_header("Location") else []
        targets += LINK.findall(text) if "html" in response.get("Content-Type", "") else []
        for target in targets:
            same = _same_site(urljoin(url, target))
            if same and same not in result.fetched:
                queue.append(same)
    return result


def guesses(world: World) -> list[str]:
    c = world.competition
    other = world.subs["mia"][0].pk
    mine = world.subs["lena"][0].pk
    base = f"/c/{c.slug}"
    return [
        "/",
        "/admin/",
        "/admin/competitions/competition/",
        f"/admin/competitions/competition/{c.pk}/change/",
        f"/admin/competitions/competition/{c.pk}/leaderboard/private.csv",
        f"/admin/competitions/competition/{c.pk}/leaderboard/public.csv",
        "/admin/competitions/submission/",
        f"/admin/competitions/submission/{other}/change/",
        f"/admin/competitions/submission/{other}/download/",
        f"/admin/competitions/submission/{mine}/download/",
        f"{base}/",
        f"{base}/data/",
        f"{base}/data/train.csv",
        f"{base}/data/{SOLUTION_NAME}",
        f"{base}/data/solution.csv",
        f"{base}/data/{PurePosixPath(c.solution.name).name}",
        f"{base}/leaderboard/",
        f"{base}/leaderboard/?board=private",
        f"{base}/leaderboard.csv",
        f"{base}/leaderboard.csv?board=private",
        f"{base}/submissions/",
        f"{base}/submissions.csv",
        f"{base}/submissions/{mine}/status.json",
        f"{base}/submissions/{other}/status.json",
        f"{base}/team/",
        f"{base}/evaluation/",
        f"{base}/rules/",
        f"/join/{c.invite_code}/",
        "/profile/",
        "/api/competitions/",
        f"/api/competitions/{c.slug}/",
        f"/api/competitions/{c.slug}/files/",
        f"/api/competitions/{c.slug}/files/train.csv",
        f"/api/competitions/{c.slug}/files/{SOLUTION_NAME}",
        f"/api/competitions/{c.slug}/data.zip",
        f"/api/competitions/{c.slug}/submissions/",
        f"/api/competitions/{c.slug}/submissions/{mine}/",
        f"/api/competitions/{c.slug}/submissions/{other}/",
        f"/api/competitions/{c.slug}/quota/",
        f"/api/competitions/{c.slug}/leaderboard/",
        f"/api/competitions/{c.slug}/leaderboard/?board=private",
        "/api/schema/",
        # Storage paths: nothing serves private storage, nor media by path.
        f"/media/{c.solution.name}",
        f"/private/{c.solution.name}",
        f"/{c.solution.name}",
        f"/static/../var/private/{c.solution.name}",
        f"/static/%2e%2e/%2e%2e/var/private/{c.solution.name}",
    ]


def assert_nothing_leaks(result: Crawl, world: World, *, allow_private_scores: bool = False) -> None:
    leaks = []
    for needle, what in forbidden(world.competition).items():
        if allow_private_scores and what == "a private score":
            continue
        for url, text in result.bodies.items():
            # A page may echo the URL that was asked for (login?next=...); the crawler put
            # the guessed names there itself, so that is no leak.
            if needle in text and needle not in unquote(unquote(url)):
                leaks.append(f"{url} reveals {what}: {needle[:40]!r}")
    if not allow_private_scores:
        leaks += [
            f"{url} sends a private score"
            for url, t in result.bodies.items()
            if PRIVATE_SCORE_VALUE.search(t)
        ]
    assert not leaks, "\n".join(leaks)


# --- the tests ---------------------------------------------------------------------------------


def test_anonymous_visitor_sees_no_hidden_data(client, world):
    result = crawl(client, guesses(world))
    # The crawler got around: the public pages and the challenge's tabs were fetched.
    assert result.fetched["/"] == 200
    assert result.fetched[f"/c/{SLUG}/leaderboard/"] == 200
    assert len(result.fetched) > 30
    assert_nothing_leaks(result, world)
    assert result.fetched[f"/c/{SLUG}/submissions/{world.subs['mia'][0].pk}/status.json"] in (302, 404)


def test_participant_sees_no_hidden_data_and_no_one_elses_submissions(client, world):
    client.force_login(world.lena)
    result = crawl(client, guesses(world))
    c = world.competition
    assert result.fetched[f"/c/{SLUG}/submissions/"] == 200
    assert result.fetched[f"/c/{SLUG}/data/train.csv"] == 200
    # The public scores are there, so the pages that would show private ones were reached.
    assert any(c.format_score(SCORES["lena"][0][0]) in text for text in result.bodies.values())
    assert_nothing_leaks(result, world)

    other, mine = world.subs["mia"][0].pk, world.subs["lena"][0].pk
    assert result.fetched[f"/c/{SLUG}/submissions/{other}/status.json"] == 404
    assert result.fetched[f"/c/{SLUG}/submissions/{mine}/status.json"] == 200
    # The status the page polls leaves the field out altogether before the deadline.
    assert "private_score" not in result.bodies[f"/c/{SLUG}/submissions/{mine}/status.json"]
    assert result.fetched[f"/api/competitions/{SLUG}/submissions/{other}/"] == 404
    # Only the organizer's tools reveal the private board early, and the participant has none.
    for url in (f"/admin/competitions/competition/{c.pk}/leaderboard/private.csv", "/admin/"):
        assert result.fetched[url] == 302
    for url in (f"/c/{SLUG}/data/{SOLUTION_NAME}", f"/c/{SLUG}/data/solution.csv"):
        assert result.fetched[url] == 404


def test_other_learners_submissions_stay_theirs_after_the_deadline(client, world):
    Competition.objects.filter(pk=world.competition.pk).update(
        deadline_at=timezone.now() - timedelta(minutes=1)
    )
    client.force_login(world.lena)
    other = world.subs["mia"][0].pk
    assert client.get(f"/c/{SLUG}/submissions/{other}/status.json").status_code == 404
    csv_export = client.get(f"/c/{SLUG}/submissions.csv").content.decode()
    assert "mia-0.csv" not in csv_export


def test_after_the_deadline_the_participant_sees_private_scores_but_not_the_solution(client, world):
    Competition.objects.filter(pk=world.competition.pk).update(
        deadline_at=timezone.now() - timedelta(minutes=1)
    )
    world.competition.refresh_from_db()
    client.force_login(world.lena)
    result = crawl(client, guesses(world))
    everything = "\n".join(result.bodies.values())
    c = world.competition
    # The final board ranks every team by its best private score; lena sees her own too.
    for score in (SCORES["lena"][0][1], SCORES["mia"][0][1]):
        assert c.format_score(score) in everything
    assert '"private_score"' in result.bodies[f"/c/{SLUG}/submissions/{world.subs['lena'][0].pk}/status.json"]
    assert_nothing_leaks(result, world, allow_private_scores=True)
