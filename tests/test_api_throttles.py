"""The API's throttles count clients per API key's user, so a classroom behind one address does
not share a budget; the Kaggle CLI's submission calls share the web form's budget."""

import base64
import json

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from competitions import services
from competitions.api_keys import api_key_create
from tests.factories import make_user
from tests.test_ratelimit import break_the_cache

RPC = "/api/v1/competitions.CompetitionApiService/"


@pytest.fixture(autouse=True)
def counters(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle-tests"}
    }
    cache.clear()
    yield
    cache.clear()


def _basic(user, key: str) -> dict:
    """What the Kaggle CLI sends: HTTP Basic with KAGGLE_USERNAME and KAGGLE_KEY."""
    raw = base64.b64encode(f"{user.username}:{key}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {raw}", "REMOTE_ADDR": "10.4.0.1"}


def _rpc(method: str, headers: dict, body: dict | None = None) -> int:
    return (
        Client()
        .post(RPC + method, json.dumps(body or {}), content_type="application/json", **headers)
        .status_code
    )


def test_two_api_keys_behind_one_address_have_separate_budgets(learner, settings):
    settings.HOLDOUT_RATELIMIT_API = "2/60"
    classmate = make_user("mia")
    mine, theirs = _basic(learner, api_key_create(learner)), _basic(classmate, api_key_create(classmate))
    assert [_rpc("ListCompetitions", mine) for _ in range(3)] == [200, 200, 429]
    assert _rpc("ListCompetitions", theirs) == 200
    # A script with the same user's new key (Token header, another address) shares the budget.
    script = {"HTTP_AUTHORIZATION": f"Token {api_key_create(learner)}", "REMOTE_ADDR": "10.4.0.2"}
    assert _rpc("ListCompetitions", script) == 429


def test_kaggle_submission_calls_share_the_web_forms_budget_per_user(learner, joined, competition, settings):
    settings.HOLDOUT_RATELIMIT_SUBMIT = "2/60"
    key = _basic(learner, api_key_create(learner))
    body = {"competitionName": competition.slug, "fileName": "preds.csv", "contentLength": 10}
    assert _rpc("StartSubmissionUpload", key, body) == 200
    web = Client()
    web.force_login(learner)
    upload = web.post(reverse("competition_submit", args=[competition.slug]), {}, REMOTE_ADDR="10.4.0.1")
    assert upload.status_code == 400  # an empty form, counted all the same
    refused = Client().post(RPC + "CreateSubmission", "{}", content_type="application/json", **key)
    assert refused.status_code == 429
    assert refused.json()["message"].startswith("Too many submissions: at most 2 every minute.")
    assert int(refused["Retry-After"]) >= 1

    # A teammate behind the same address has a budget of their own.
    teammate = make_user("mia")
    services.competition_join(user=teammate, competition=competition)
    assert _rpc("StartSubmissionUpload", _basic(teammate, api_key_create(teammate)), body) == 200


def test_the_upload_url_counts_against_the_user_it_was_issued_to(learner, joined, competition, settings):
    settings.HOLDOUT_RATELIMIT_SUBMIT = "3/60"
    body = {"competitionName": competition.slug, "fileName": "preds.csv", "contentLength": 3}
    teammate = make_user("mia")
    services.competition_join(user=teammate, competition=competition)
    mine, theirs = _basic(learner, api_key_create(learner)), _basic(teammate, api_key_create(teammate))

    def start(headers: dict) -> str:
        response = Client().post(
            RPC + "StartSubmissionUpload", json.dumps(body), content_type="application/json", **headers
        )
        assert response.status_code == 200
        return response.json()["createUrl"].split("/api/", 1)[1]

    def put(path: str) -> int:
        # Sent without credentials, from the classroom's one address.
        return (
            Client()
            .put("/api/" + path, b"a,b", content_type="application/octet-stream", REMOTE_ADDR="10.4.0.1")
            .status_code
        )

    my_url, their_url = start(mine), start(theirs)
    assert put(my_url) == 201
    assert put(my_url) == 201  # the learner's third submission call
    assert put(their_url) == 201  # the teammate's second: not the learner's budget
    assert put(my_url) == 429


def test_throttles_let_requests_through_when_the_cache_is_down(learner, settings):
    break_the_cache(settings)
    settings.HOLDOUT_RATELIMIT_API = "1/60"
    key = _basic(learner, api_key_create(learner))
    assert [_rpc("ListCompetitions", key) for _ in range(3)] == [200, 200, 200]
