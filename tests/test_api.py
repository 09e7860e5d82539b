"""The REST API, API keys, the profile page and the Kaggle protocol's server side.

The real Kaggle CLI is driven against a live server in tests/integration/test_kaggle_cli.py.
"""

import base64
import hashlib
import io
import time
import zipfile
from datetime import timedelta

import pytest
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from competitions import services
from competitions.api import blobs
from competitions.api.middleware import AbsoluteFormMiddleware
from competitions.api_keys import api_key_create, api_key_user
from competitions.models import ApiKey, Competition, DataFile, Submission
from tests.factories import make_competition, perfect_submission

RPC = "/api/v1/competitions.CompetitionApiService/"


def token(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {key}"}


def basic(username: str, key: str) -> dict:
    raw = base64.b64encode(f"{username}:{key}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {raw}"}


@pytest.fixture
def learner_key(learner) -> str:
    return api_key_create(learner)


@pytest.fixture
def outsider_key(outsider) -> str:
    return api_key_create(outsider)


@pytest.fixture
def organizer_key(organizer) -> str:
    return api_key_create(organizer)


@pytest.fixture
def data_file(competition) -> DataFile:
    return DataFile.objects.create(
        competition=competition, file=ContentFile(b"id,x\nr000,1\n", name="train.csv"), description="Training"
    )


def submit(user, competition, body: bytes | None = None, name: str = "preds.csv") -> Submission:
    upload = SimpleUploadedFile(name, body if body is not None else perfect_submission(competition))
    return services.submission_create(user=user, competition=competition, uploaded=upload)


def end(competition: Competition) -> None:
    """Move the deadline into the past, keeping the submissions' creation times before it."""
    Submission.objects.filter(competition=competition).update(created_at=F("created_at") - timedelta(hours=1))
    Competition.objects.filter(pk=competition.pk).update(deadline_at=timezone.now() - timedelta(minutes=1))
    competition.refresh_from_db()


def rpc(client, method: str, body: dict, **headers):
    return client.post(RPC + method, body, content_type="application/json", **headers)


# --- API keys ---------------------------------------------------------------------------------


def test_api_key_is_stored_only_as_a_hash(learner):
    key = api_key_create(learner)
    stored = ApiKey.objects.get(user=learner)
    assert len(key) == 32
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert stored.prefix == key[:8]
    assert key not in stored.key_hash


def test_api_key_user_finds_the_owner_and_records_use(learner):
    key = api_key_create(learner)
    assert api_key_user(key) == learner
    assert ApiKey.objects.get(user=learner).last_used_at is not None
    assert api_key_user(key[:-1] + ("0" if key[-1] != "0" else "1")) is None
    assert api_key_user("") is None


def test_regenerating_a_key_invalidates_the_old_one(learner):
    old = api_key_create(learner)
    new = api_key_create(learner)
    assert old != new
    assert api_key_user(old) is None
    assert api_key_user(new) == learner
    assert ApiKey.objects.filter(user=learner).count() == 1


def test_inactive_users_key_is_refused(learner):
    key = api_key_create(learner)
    learner.is_active = False
    learner.save()
    assert api_key_user(key) is None


# --- Authentication ---------------------------------------------------------------------------


def test_token_basic_bearer_and_session_authenticate(client, learner, learner_key, joined):
    url = reverse("api_submission_list", args=["churn"])
    assert client.get(url, **token(learner_key)).status_code == 200
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {learner_key}").status_code == 200
    assert client.get(url, **basic("lena", learner_key)).status_code == 200
    client.force_login(learner)
    assert client.get(url).status_code == 200


def test_missing_credentials_are_a_json_401(client, competition):
    response = client.get(reverse("api_submission_list", args=["churn"]))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert "credentials" in response.json()["detail"].lower()


@pytest.mark.parametrize(
    "headers",
    [
        lambda key: basic("otto", key),  # right key, someone else's username
        lambda key: basic("lena", "0" * 32),
        lambda key: token("0" * 32),
        lambda key: {"HTTP_AUTHORIZATION": "Token"},
        lambda key: {"HTTP_AUTHORIZATION": "Basic !!!"},
    ],
    ids=["wrong-username", "wrong-key-basic", "wrong-key-token", "empty-token", "garbled-basic"],
)
def test_bad_credentials_are_refused(client, outsider, learner_key, joined, headers):
    response = client.get(reverse("api_competition_list"), **headers(learner_key))
    assert response.status_code == 401
    assert response.json()["detail"]


def test_old_key_is_refused_after_regeneration(client, learner, joined):
    old = api_key_create(learner)
    api_key_create(learner)
    assert client.get(reverse("api_submission_list", args=["churn"]), **token(old)).status_code == 401


# --- Competitions -----------------------------------------------------------------------------


def test_competition_list_shows_only_visible_competitions(client, organizer, learner, learner_key, joined):
    make_competition(organizer, slug="secret", state=Competition.State.DRAFT)
    anonymous = [c["slug"] for c in client.get(reverse("api_competition_list")).json()]
    as_learner = client.get(reverse("api_competition_list"), **token(learner_key)).json()
    client.force_login(organizer)
    as_organizer = [c["slug"] for c in client.get(reverse("api_competition_list")).json()]
    assert anonymous == ["churn"]
    assert [(c["slug"], c["joined"]) for c in as_learner] == [("churn", True)]
    assert sorted(as_organizer) == ["churn", "secret"]


def test_competition_detail_hides_drafts_from_learners(client, organizer, learner_key):
    make_competition(organizer, slug="secret", state=Competition.State.DRAFT)
    url = reverse("api_competition_detail", args=["secret"])
    response = client.get(url, **token(learner_key))
    assert response.status_code == 404
    assert response.json()["detail"]
    client.force_login(organizer)
    detail = client.get(url).json()
    assert detail["slug"] == "secret" and detail["rules"] and detail["phase"] == "active"


# --- Data files -------------------------------------------------------------------------------


def test_data_file_list_is_visible_to_anyone_who_sees_the_competition(client, data_file):
    files = client.get(reverse("api_data_file_list", args=["churn"])).json()
    assert [(f["name"], f["size"]) for f in files] == [("train.csv", 12)]
    assert files[0]["download_url"].endswith("/api/competitions/churn/files/train.csv")


def test_data_download_needs_joining(client, data_file, joined, learner_key, outsider_key, organizer_key):
    url = reverse("api_data_file_download", args=["churn", "train.csv"])
    assert client.get(url).status_code == 401
    refused = client.get(url, **token(outsider_key))
    assert refused.status_code == 403
    assert "Join the competition" in refused.json()["detail"]
    for key in (learner_key, organizer_key):
        response = client.get(url, **token(key))
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == b"id,x\nr000,1\n"
        assert response["Content-Disposition"].startswith('attachment; filename="train.csv"')
        assert response["Last-Modified"].endswith(" GMT")
    missing = client.get(reverse("api_data_file_download", args=["churn", "nope.csv"]), **token(learner_key))
    assert missing.status_code == 404


def test_data_zip_holds_every_data_file(client, data_file, joined, learner_key, outsider_key):
    url = reverse("api_data_zip", args=["churn"])
    assert client.get(url, **token(outsider_key)).status_code == 403
    response = client.get(url, **token(learner_key))
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.read("train.csv") == b"id,x\nr000,1\n"


# --- Submitting -------------------------------------------------------------------------------


def post_file(client, key: str, body: bytes, name: str = "preds.csv", slug: str = "churn"):
    upload = SimpleUploadedFile(name, body)
    return client.post(
        reverse("api_submission_list", args=[slug]), {"file": upload, "description": "api"}, **token(key)
    )


def test_submit_creates_a_submission_that_is_scored(
    client, competition, joined, learner_key, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_file(client, learner_key, perfect_submission(competition))
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["status"] == "queued" and created["description"] == "api"
    detail = client.get(reverse("api_submission_detail", args=["churn", created["id"]]), **token(learner_key))
    data = detail.json()
    assert data["status"] == "scored" and data["public_score"] == 1.0
    assert data["private_score"] is None and data["private_score_visible"] is False


def test_submit_refusals_are_400_with_the_services_message(client, competition, joined, learner_key):
    wrong_type = post_file(client, learner_key, b"id,target\n", name="preds.txt")
    assert wrong_type.status_code == 400
    assert ".csv" in wrong_type.json()["detail"]
    for _ in range(competition.daily_limit):
        submit(joined.user, competition)
    exhausted = post_file(client, learner_key, perfect_submission(competition))
    assert exhausted.status_code == 400
    assert "used all 5 submissions for today" in exhausted.json()["detail"]


def test_submit_needs_joining(client, competition, outsider_key):
    response = post_file(client, outsider_key, perfect_submission(competition))
    assert response.status_code == 403
    assert "Join the competition" in response.json()["detail"]


def test_submit_after_the_deadline_is_refused(client, competition, joined, learner_key):
    end(competition)
    response = post_file(client, learner_key, perfect_submission(competition))
    assert response.status_code == 400
    assert "closed" in response.json()["detail"]


# --- Submissions ------------------------------------------------------------------------------


@pytest.fixture
def scored(competition, joined, eager_celery, django_capture_on_commit_callbacks) -> Submission:
    with django_capture_on_commit_callbacks(execute=True):
        submission = submit(joined.user, competition)
    submission.refresh_from_db()
    assert submission.status == Submission.Status.SCORED
    return submission


def test_submissions_list_shows_only_the_callers_team(client, competition, scored, outsider, outsider_key):
    services.competition_join(user=outsider, competition=competition)
    submit(outsider, competition)
    learner_key = api_key_create(scored.submitted_by)
    mine = client.get(reverse("api_submission_list", args=["churn"]), **token(learner_key)).json()
    assert [s["id"] for s in mine] == [scored.pk]


def test_not_joined_caller_has_no_submissions(client, competition, outsider_key):
    response = client.get(reverse("api_submission_list", args=["churn"]), **token(outsider_key))
    assert response.status_code == 200 and response.json() == []


def test_other_teams_submission_is_404(client, competition, scored, outsider, outsider_key):
    services.competition_join(user=outsider, competition=competition)
    url = reverse("api_submission_detail", args=["churn", scored.pk])
    assert client.get(url, **token(outsider_key)).status_code == 404
    assert client.get(url, **token(api_key_create(scored.submitted_by))).status_code == 200


def test_final_selection_through_the_api(client, competition, scored, outsider, outsider_key):
    key = api_key_create(scored.submitted_by)
    url = reverse("api_submission_detail", args=["churn", scored.pk])
    response = client.patch(url, {"is_final": True}, content_type="application/json", **token(key))
    assert response.status_code == 200 and response.json()["is_final"] is True
    # Another team's submission cannot be selected, and nothing changes after the deadline.
    services.competition_join(user=outsider, competition=competition)
    other = client.patch(url, {"is_final": False}, content_type="application/json", **token(outsider_key))
    assert other.status_code == 404
    end(competition)
    late = client.patch(url, {"is_final": False}, content_type="application/json", **token(key))
    assert late.status_code == 400 and "after the deadline" in late.json()["detail"]
    scored.refresh_from_db()
    assert scored.is_final


def test_private_score_is_hidden_until_the_deadline(client, competition, scored):
    key = api_key_create(scored.submitted_by)
    url = reverse("api_submission_detail", args=["churn", scored.pk])
    before = client.get(url, **token(key)).json()
    assert before["public_score"] == 1.0 and before["private_score"] is None
    end(competition)
    after = client.get(url, **token(key)).json()
    assert after["private_score"] == 1.0 and after["private_score_visible"] is True


def test_quota_counts_the_teams_submissions(client, competition, scored, outsider_key):
    quota = client.get(
        reverse("api_quota", args=["churn"]), **token(api_key_create(scored.submitted_by))
    ).json()
    assert (quota["used_today"], quota["daily_left"], quota["can_submit"]) == (1, 4, True)
    assert client.get(reverse("api_quota", args=["churn"]), **token(outsider_key)).status_code == 403


# --- Leaderboard ------------------------------------------------------------------------------


def test_leaderboard_is_public_before_and_private_after_the_deadline(client, competition, scored):
    url = reverse("api_leaderboard", args=["churn"])
    public = client.get(url).json()
    assert public["board"] == "public" and public["final"] is False
    assert [(r["rank"], r["team_name"], r["score"]) for r in public["rows"]] == [(1, "lena", 1.0)]
    early = client.get(url, {"board": "private"})
    assert early.status_code == 403 and "deadline" in early.json()["detail"]
    end(competition)
    final = client.get(url).json()
    assert final["board"] == "private" and final["rows"][0]["score"] == 1.0
    assert client.get(url, {"board": "public"}).json()["board"] == "public"
    assert client.get(url, {"board": "nope"}).status_code == 400


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/nothing/here")
    assert response.status_code == 404
    assert response.json()["detail"]


# --- Profile page -----------------------------------------------------------------------------


def test_profile_needs_login(client):
    response = client.get(reverse("profile"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_profile_creates_a_key_shown_once(client, learner, joined):
    client.force_login(learner)
    page = client.get(reverse("profile")).content.decode()
    assert "Create new API token" in page and "Churn" in page
    created = client.post(reverse("profile"))
    key = created.context["new_key"]
    html = created.content.decode()
    assert key in html and 'download="kaggle.json"' in html
    assert "KAGGLE_API_ENVIRONMENT=LOCALHOST" in html and "HTTP_PROXY=http://testserver" in html
    assert "no-store" in created["Cache-Control"]
    assert api_key_user(key) == learner
    later = client.get(reverse("profile")).content.decode()
    assert key not in later and key[:8] in later


# --- Kaggle protocol (server side) ------------------------------------------------------------


def test_kaggle_errors_have_code_and_message(client, learner_key):
    response = rpc(client, "ListDataFiles", {"competitionName": "nope"}, **basic("lena", learner_key))
    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": "No such competition (or it is not visible to you)."}
    refused = rpc(client, "ListSubmissions", {"competitionName": "churn"}, **basic("lena", "0" * 32))
    assert refused.status_code == 401 and refused.json()["code"] == 401


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("ListCompetitions", '{"pageSize": 1e400}'),
        ("ListCompetitions", '{"page": -1e400}'),
        ("ListCompetitions", '{"pageToken": "\u00b2"}'),
        (
            "StartSubmissionUpload",
            '{"competitionName": "churn", "contentLength": 1e400, "fileName": "p.csv"}',
        ),
    ],
)
def test_kaggle_numbers_that_are_not_whole_numbers_are_a_400(
    client, competition, joined, learner_key, method, body
):
    # 1e400 arrives as float("inf"), which int() refuses with OverflowError: that was a 500.
    response = client.post(RPC + method, body, content_type="application/json", **basic("lena", learner_key))
    assert response.status_code == 400
    assert "must be a whole number" in response.json()["message"]


def test_kaggle_unknown_method_is_501(client, learner_key):
    response = client.post(
        "/api/v1/datasets.DatasetApiService/ListDatasets", {}, content_type="application/json"
    )
    assert response.status_code == 501
    assert "does not implement" in response.json()["message"]


def test_kaggle_list_competitions_uses_camel_case_and_slugs(client, competition, joined, learner_key):
    data = rpc(client, "ListCompetitions", {"page": 1, "pageSize": 20}, **basic("lena", learner_key)).json()
    (item,) = data["competitions"]
    assert item["ref"] == "churn" and item["userHasEntered"] is True
    assert item["deadline"].endswith("Z") and item["maxDailySubmissions"] == 5
    assert data["nextPageToken"] == ""


def test_kaggle_download_redirects_with_302(client, data_file, joined, learner_key):
    auth = basic("lena", learner_key)
    everything = rpc(client, "DownloadDataFiles", {"competitionName": "churn"}, **auth)
    assert everything.status_code == 302 and everything["Location"].endswith("/churn/data.zip")
    one = rpc(client, "DownloadDataFile", {"competitionName": "churn", "fileName": "train.csv"}, **auth)
    assert one.status_code == 302 and one["Location"].endswith("/train.csv")


def start_upload(client, key: str, size: int = 100) -> dict:
    body = {"competitionName": "churn", "fileName": "preds.csv", "contentLength": size}
    response = rpc(client, "StartSubmissionUpload", body, **basic("lena", key))
    assert response.status_code == 200, response.content
    return response.json()


def put(client, url: str, body: bytes):
    return client.generic("PUT", url, body, content_type="application/octet-stream")


def test_kaggle_upload_then_create_submission(
    client, competition, joined, learner_key, eager_celery, django_capture_on_commit_callbacks
):
    started = start_upload(client, learner_key)
    assert started["createUrl"].startswith("http://testserver/api/v1/blobs/upload/")
    assert put(client, started["createUrl"], perfect_submission(competition)).status_code == 201
    body = {"competitionName": "churn", "blobFileTokens": started["token"], "submissionDescription": "cli"}
    with django_capture_on_commit_callbacks(execute=True):
        created = rpc(client, "CreateSubmission", body, **basic("lena", learner_key))
    assert created.status_code == 200, created.content
    submission = Submission.objects.get(pk=created.json()["ref"])
    assert (submission.original_name, submission.description, submission.status) == (
        "preds.csv",
        "cli",
        "scored",
    )
    # A token serves once: the blob is gone.
    again = rpc(client, "CreateSubmission", body, **basic("lena", learner_key))
    assert again.status_code == 400 and "not found" in again.json()["message"]


def test_kaggle_upload_token_is_bound_to_its_user(client, competition, joined, learner_key, outsider):
    services.competition_join(user=outsider, competition=competition)
    started = start_upload(client, learner_key)
    put(client, started["createUrl"], perfect_submission(competition))
    body = {"competitionName": "churn", "blobFileTokens": started["token"]}
    response = rpc(client, "CreateSubmission", body, **basic("otto", api_key_create(outsider)))
    assert response.status_code == 403
    assert not Submission.objects.exists()


def test_tampered_upload_url_is_refused(client, competition, joined, learner_key):
    started = start_upload(client, learner_key)
    forged = started["createUrl"][:-3] + ("AAA" if not started["createUrl"].endswith("AAA") else "BBB")
    response = put(client, forged, b"id,target\n")
    assert response.status_code == 403 and "not valid" in response.json()["message"]


def test_expired_upload_url_is_refused(client, competition, joined, learner_key, monkeypatch):
    twenty_minutes_ago = time.time() - 20 * 60
    monkeypatch.setattr(signing.time, "time", lambda: twenty_minutes_ago)
    started = start_upload(client, learner_key)
    monkeypatch.undo()
    response = put(client, started["createUrl"], b"id,target\n")
    assert response.status_code == 403 and "expired" in response.json()["message"]


def test_upload_larger_than_the_cap_is_refused_while_streaming(client, competition, joined, learner_key):
    Competition.objects.filter(pk=competition.pk).update(max_upload_mb=1)
    assert rpc(
        client, "StartSubmissionUpload",
        {"competitionName": "churn", "fileName": "p.csv", "contentLength": 2 * 1024 * 1024},
        **basic("lena", learner_key),
    ).status_code == 400  # fmt: skip
    started = start_upload(client, learner_key)
    response = put(client, started["createUrl"], b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413 and "at most 1 MB" in response.json()["message"]
    assert not blobs.blob_exists(blobs.blob_token_read(started["token"], max_age=blobs.BLOB_MAX_AGE))


def test_kaggle_submission_views_map_status_and_hide_private_scores(client, competition, scored):
    auth = basic("lena", api_key_create(scored.submitted_by))
    listed = rpc(client, "ListSubmissions", {"competitionName": "churn"}, **auth).json()["submissions"]
    assert [(s["ref"], s["status"], s["publicScore"], s["privateScore"]) for s in listed] == [
        (scored.pk, "COMPLETE", "1.00000", "")
    ]
    end(competition)
    one = rpc(client, "GetSubmission", {"ref": scored.pk}, **auth).json()
    assert one["privateScore"] == "1.00000"
    limits = rpc(client, "GetSubmissionLimits", {"competitionName": "churn"}, **auth).json()
    assert limits == {"numToday": 1, "numTotal": 1, "numAllowedNow": 4, "limitedByTotal": False}


def test_kaggle_leaderboard_and_its_download(client, competition, scored):
    board = rpc(client, "GetLeaderboard", {"competitionName": "churn"}).json()["submissions"]
    assert [(row["teamName"], row["score"]) for row in board] == [("lena", "1.00000")]
    response = rpc(client, "DownloadLeaderboard", {"competitionName": "churn"})
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    (name,) = archive.namelist()
    assert name.startswith("churn-publicleaderboard-")
    assert archive.read(name).decode().splitlines()[1].split(",")[2:5:2] == ["lena", "1.00000"]


def test_introspect_token_names_the_keys_owner(client, learner_key):
    url = "/api/v1/security.OAuthService/IntrospectToken"
    ok = client.post(url, {"token": learner_key}, content_type="application/json").json()
    assert ok == {"active": True, "username": "lena", "userId": ok["userId"]}
    assert client.post(url, {"token": "x"}, content_type="application/json").json() == {"active": False}


# --- Absolute-form requests -------------------------------------------------------------------


def test_absolute_form_path_is_normalised():
    seen = {}

    def view(request):
        seen.update(path=request.path_info, host=request.get_host())
        return None

    request = RequestFactory().post("/ignored", PATH_INFO="http://localhost/api/v1/x.Y/Method")
    AbsoluteFormMiddleware(view)(request)
    assert seen == {"path": "/api/v1/x.Y/Method", "host": "localhost"}


def test_absolute_form_request_reaches_the_kaggle_endpoint(client, competition):
    response = client.post(
        "/ignored", {}, content_type="application/json",
        PATH_INFO="http://localhost" + RPC + "ListCompetitions", HTTP_HOST="localhost",
    )  # fmt: skip
    assert response.status_code == 200
    assert response.json()["competitions"][0]["url"].startswith("http://localhost/")


def test_absolute_form_host_is_checked_against_allowed_hosts(client):
    response = client.post(
        "/ignored",
        {},
        content_type="application/json",
        PATH_INFO="http://evil.example" + RPC + "ListCompetitions",
    )
    assert response.status_code == 400
