"""Participants see scores at the challenge's display precision, on every surface.

More digits than the board shows would tell apart submissions the board calls equal and let a
learner probe the test set with tiny changes. So every page, JSON answer, Kaggle protocol
reply and CSV download a participant can reach goes through Competition.shown_score; the
organizers' admin keeps the stored, full-precision score.

The walk is driven by URL names: every named URL of the site (and every Kaggle protocol
method) is either walked here or listed with the reason it shows no score. A new URL fails
`test_every_url_and_kaggle_method_is_walked_or_known_to_show_no_score` until it is classified.
"""

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import get_resolver, reverse
from django.utils import timezone

from competitions import services
from competitions.api.kaggle import COMPETITIONS, METHODS
from competitions.api_keys import api_key_create
from competitions.models import Competition, Submission
from tests.factories import make_competition, make_submission

pytestmark = pytest.mark.django_db

PRECISION = 3
# Scores whose digits after the third decimal cannot appear in a page by accident.
PUBLIC, PRIVATE = 0.123456789012, 0.987654321098
LATE_PUBLIC, LATE_PRIVATE = 0.456789012345, 0.654321098765
SHOWN = {"0.123", "0.988", "0.457", "0.654"}

# URL names walked below, each with the query strings that reach its variants.
WALKED_URLS = {
    "competition_list": [""],
    "competition_detail": [""],
    "competition_data": [""],
    "competition_evaluation": [""],
    "competition_rules": [""],
    "competition_leaderboard": ["", "?board=public", "?board=private", "?board=late"],
    "competition_submit": [""],
    "competition_submissions": [""],
    "submission_status": [""],
    "team_page": [""],
    "leaderboard_csv": ["?board=public", "?board=private", "?board=late"],
    "my_submissions_csv": [""],
    "profile": [""],
    "api_competition_list": [""],
    "api_competition_detail": [""],
    "api_data_file_list": [""],
    "api_submission_list": [""],
    "api_submission_detail": [""],
    "api_quota": [""],
    "api_leaderboard": ["", "?board=public", "?board=private"],
    "kaggle_rpc": [""],  # the methods in WALKED_KAGGLE
}
# URL names that show no score, and why.
NO_SCORE_URLS = {
    "healthz": "a plain 'ok'",
    "signup": "account pages",
    "login": "account pages",
    "logout": "account pages",
    "password_change": "account pages",
    "password_change_done": "account pages",
    "password_reset": "account pages",
    "password_reset_done": "account pages",
    "password_reset_confirm": "account pages",
    "password_reset_complete": "account pages",
    "email_confirm": "account pages",
    "email_confirm_resend": "account pages",
    "competition_invite": "the rules and a join form, for someone not yet in",
    "data_file_download": "the organizer's data files",
    "api_data_file_download": "the organizer's data files",
    "api_data_zip": "the organizer's data files",
    "api_schema": "the API's description",
    "api_docs": "the API's description",
    "invitation_answer": "POST only; redirects to the team page",
    "team_join_link": "a join form; redirects to the team page",
    "submission_select": "POST only; redirects to My submissions",
    "kaggle_blob_upload": "PUT only; answers with the stored size",
}
# Kaggle protocol methods (the CLI's `submissions`, `leaderboard --show/--download`, `list`).
WALKED_KAGGLE = {
    "ListCompetitions": [{}],
    "ListSubmissions": [{"competitionName": "churn"}],
    "GetSubmission": [{"ref": "{submission}"}],
    "GetLeaderboard": [{"competitionName": "churn"}, {"competitionName": "churn", "overridePublic": True}],
    "DownloadLeaderboard": [
        {"competitionName": "churn"},
        {"competitionName": "churn", "overridePublic": True},
    ],
    "GetSubmissionLimits": [{"competitionName": "churn"}],
    "ListDataFiles": [{"competitionName": "churn"}],
}
NO_SCORE_KAGGLE = {
    "DownloadDataFiles": "a redirect to the data zip",
    "DownloadDataFile": "a redirect to a data file",
    "StartSubmissionUpload": "an upload token",
    "CreateSubmission": "a message and the new submission's id",
    "IntrospectToken": "whose token it is",
}


@dataclass
class World:
    competition: Competition
    submission: Submission
    late: Submission


@pytest.fixture
def world(organizer, learner) -> World:
    competition = make_competition(organizer, score_precision=PRECISION, late_submissions=True)
    team = services.competition_join(user=learner, competition=competition).team
    submission = make_submission(competition, team, learner, PUBLIC, PRIVATE, hours_ago=2)
    Competition.objects.filter(pk=competition.pk).update(deadline_at=timezone.now() - timedelta(hours=1))
    competition.refresh_from_db()
    late = make_submission(competition, team, learner, LATE_PUBLIC, LATE_PRIVATE, hours_ago=0.5, is_late=True)
    return World(competition, submission, late)


def _forbidden(score: float) -> list[re.Pattern]:
    """The score with any digit beyond the display precision: its repr, and four decimals
    rounded or cut. Not preceded by a digit, so that the fraction of a timestamp's seconds
    ("12:30:10.1234…") is not taken for a score."""
    texts = {repr(score), f"{score:.4f}", f"{score:.6f}"[:-2]}
    return [re.compile(r"(?<!\d)" + re.escape(text)) for text in texts]


FORBIDDEN = [p for score in (PUBLIC, PRIVATE, LATE_PUBLIC, LATE_PRIVATE) for p in _forbidden(score)]


def _body(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if response["Content-Type"].startswith("application/zip"):
        archive = zipfile.ZipFile(io.BytesIO(content))
        return "\n".join(archive.read(name).decode() for name in archive.namelist())
    return content.decode()


def _walk(client, world: World, api_key: str) -> dict[str, str]:
    """Every participant-facing surface, as the learner sees it: {what was asked: the answer}."""
    slug, pk = world.competition.slug, world.submission.pk
    args = {
        "submission_status": [slug, pk],
        "api_submission_detail": [slug, pk],
        "competition_list": [],
        "profile": [],
        "api_competition_list": [],
    }
    auth = {"HTTP_AUTHORIZATION": f"Token {api_key}"}
    answers = {}
    for name, queries in WALKED_URLS.items():
        if name == "kaggle_rpc":
            continue
        for query in queries:
            url = reverse(name, args=args.get(name, [slug])) + query
            response = client.get(url, **(auth if name.startswith("api_") else {}))
            assert response.status_code == 200, url
            answers[url] = _body(response)
    for method, bodies in WALKED_KAGGLE.items():
        for body in bodies:
            body = {k: (pk if v == "{submission}" else v) for k, v in body.items()}
            url = reverse("kaggle_rpc", args=[COMPETITIONS, method])
            response = client.post(url, body, content_type="application/json", **auth)
            assert response.status_code == 200, (method, body)
            answers[f"{method} {body}"] = _body(response)
    return answers


def test_participants_see_scores_only_at_the_display_precision(client, world, learner):
    client.force_login(learner)
    answers = _walk(client, world, api_key_create(learner))

    leaks = sorted(
        {where for where, text in answers.items() for pattern in FORBIDDEN if pattern.search(text)}
    )
    assert leaks == []
    # The walk reached the scores: each is shown, rounded, somewhere; the main ones on every
    # kind of surface (page, status.json, REST, Kaggle, CSV).
    everything = "\n".join(answers.values())
    assert all(shown in everything for shown in SHOWN)
    slug, pk = world.competition.slug, world.submission.pk
    for where in (
        reverse("competition_submissions", args=[slug]),
        reverse("submission_status", args=[slug, pk]),
        reverse("api_submission_list", args=[slug]),
        reverse("api_leaderboard", args=[slug]) + "?board=public",
        reverse("leaderboard_csv", args=[slug]) + "?board=public",
        reverse("my_submissions_csv", args=[slug]),
        "GetLeaderboard {'competitionName': 'churn', 'overridePublic': True}",
    ):
        assert "0.123" in answers[where], where
    for where in (
        reverse("submission_status", args=[slug, pk]),
        reverse("api_submission_detail", args=[slug, pk]),
        reverse("api_leaderboard", args=[slug]),
        f"GetSubmission {{'ref': {pk}}}",
        "DownloadLeaderboard {'competitionName': 'churn'}",
    ):
        assert "0.988" in answers[where], where
    # JSON carries numbers, rounded: not strings, not the stored value.
    status = client.get(reverse("submission_status", args=[slug, pk])).json()
    assert (status["public_score"], status["private_score"]) == (0.123, 0.988)


def test_organizers_keep_full_precision_in_the_admin(admin_client, world):
    page = admin_client.get(reverse("admin:competitions_submission_change", args=[world.submission.pk]))
    assert page.status_code == 200
    assert repr(PUBLIC) in page.content.decode() and repr(PRIVATE) in page.content.decode()
    listing = admin_client.get(reverse("admin:competitions_submission_changelist"))
    assert repr(PUBLIC) in listing.content.decode()


def test_equal_scores_at_the_display_precision_still_share_a_rank(client, world, outsider):
    team = services.competition_join(user=outsider, competition=world.competition).team
    make_submission(world.competition, team, outsider, PUBLIC + 1e-6, PRIVATE, hours_ago=1.5)
    board = client.get(reverse("api_leaderboard", args=[world.competition.slug]) + "?board=public").json()
    assert [(row["rank"], row["team_name"], row["score"]) for row in board["rows"]] == [
        (1, "lena", 0.123),
        (1, "otto", 0.123),
    ]


def test_every_url_and_kaggle_method_is_walked_or_known_to_show_no_score():
    names = {key for key in get_resolver().reverse_dict if isinstance(key, str)}
    assert names == set(WALKED_URLS) | set(NO_SCORE_URLS)
    assert not set(WALKED_URLS) & set(NO_SCORE_URLS)
    methods = {method for service, method in METHODS}
    assert methods == set(WALKED_KAGGLE) | set(NO_SCORE_KAGGLE)
