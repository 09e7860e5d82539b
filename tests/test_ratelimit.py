"""Rate limits on sign-in, sign-up, password reset and submissions; reading pages is never limited."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache, caches
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory
from django.urls import reverse

from competitions import ratelimit, services
from competitions.api_keys import api_key_create
from competitions.models import Submission
from tests.factories import PASSWORD, make_user, perfect_submission, require_service


@pytest.fixture(autouse=True)
def limited(settings):
    """A fresh private cache for the counters."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ratelimit-tests"}
    }
    # Many sign-ins below; the real hasher would make them slow, and hashing is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield settings
    cache.clear()


def _login(client: Client, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def _assert_limited_html(response, what: str) -> None:
    assert response.status_code == 429
    retry = int(response["Retry-After"])
    assert 1 <= retry <= 3600
    page = response.content.decode()
    assert f"Too many {what}" in page
    assert "try again in" in page


# --- sign-in -----------------------------------------------------------------------------------


def test_failed_sign_ins_are_limited_then_even_the_right_password_waits(client, learner, settings):
    settings.HOLDOUT_RATELIMIT_LOGIN = "3/60"
    for _ in range(3):
        assert _login(client, "lena", "wrong").status_code == 200
    _assert_limited_html(_login(client, "lena", PASSWORD), "failed sign-ins")
    assert "_auth_user_id" not in client.session


def test_successful_sign_ins_do_not_count(db, settings):
    settings.HOLDOUT_RATELIMIT_LOGIN = "2/60"
    for i in range(5):
        make_user(f"student{i}")
    # A classroom behind one address signing in at once.
    for i in range(5):
        assert _login(Client(), f"student{i}", PASSWORD).status_code == 302


def test_guessing_one_account_from_many_addresses_is_limited(client, learner, settings):
    settings.HOLDOUT_RATELIMIT_LOGIN = "3/60"
    for n in range(3):
        assert _login(client, "LENA ", "wrong", ip=f"10.1.0.{n}").status_code == 200
    assert _login(client, "lena", "wrong", ip="10.1.0.99").status_code == 429


def test_reading_the_sign_in_page_never_counts(client, learner, settings):
    settings.HOLDOUT_RATELIMIT_LOGIN = "1/60"
    for _ in range(20):
        assert client.get(reverse("login"), REMOTE_ADDR="10.0.0.1").status_code == 200
    assert _login(client, "lena", PASSWORD).status_code == 302


def test_counters_reset_with_the_next_window(client, learner, settings, monkeypatch):
    settings.HOLDOUT_RATELIMIT_LOGIN = "1/60"
    now = [60 * 16_667 + 20.0]  # 20 s into a 60 s window
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    assert _login(client, "lena", "wrong").status_code == 200
    limited = _login(client, "lena", "wrong")
    assert limited.status_code == 429
    assert limited["Retry-After"] == "40"
    now[0] += 40
    assert _login(client, "lena", PASSWORD).status_code == 302


class GatedPasswordChecks:
    """Stands in for the authentication backend: every password check waits at a gate until all
    the concurrent sign-ins are either inside a check or answered, so a counter that is read
    before the check and written after it lets every one of them in."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.checked = 0
        self.answered = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()

    def backend_method(self):
        def authenticate(backend, request, username=None, password=None, **kwargs):
            with self.lock:
                self.checked += 1
            self.gate.wait(timeout=30)
            return None  # a wrong password

        return authenticate

    def post(self, path: str, username: str, ip: str) -> int:
        status = Client().post(path, {"username": username, "password": "wrong"}, REMOTE_ADDR=ip).status_code
        with self.lock:
            self.answered += 1
        return status

    def open_when_everyone_arrived(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            with self.lock:
                if self.checked + self.answered >= self.expected:
                    break
            time.sleep(0.01)
        self.gate.set()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "same_address"),
    [("/accounts/login/", True), ("/accounts/login/", False), ("/admin/login/", True)],
    ids=["one-address", "many-addresses-one-username", "admin-sign-in"],
)
def test_concurrent_wrong_passwords_check_at_most_the_limit(settings, monkeypatch, path, same_address):
    _race_wrong_passwords(settings, monkeypatch, path, same_address)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_passwords_check_at_most_the_limit_with_redis(settings, monkeypatch):
    """The production set-up: counters in Redis, shared by every process."""
    from tests.integration.helpers import redis_problem, redis_test_url

    url = redis_test_url()
    require_service(redis_problem(url) is None, f"Redis at {url} is not reachable")
    settings.CACHES = {
        **settings.CACHES,
        "redis": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url},
    }
    settings.HOLDOUT_RATELIMIT_CACHE = "redis"
    caches["redis"].clear()
    try:
        _race_wrong_passwords(settings, monkeypatch, "/accounts/login/", True)
    finally:
        caches["redis"].clear()


def _race_wrong_passwords(settings, monkeypatch, path: str, same_address: bool) -> None:
    settings.HOLDOUT_RATELIMIT_LOGIN = "10/3600"
    checks = GatedPasswordChecks(expected=40)
    monkeypatch.setattr(ModelBackend, "authenticate", checks.backend_method())
    with ThreadPoolExecutor(max_workers=40) as pool:
        futures = [
            pool.submit(checks.post, path, "lena", "10.3.0.1" if same_address else f"10.3.{n}.1")
            for n in range(40)
        ]
        checks.open_when_everyone_arrived(deadline=time.monotonic() + 30)
        statuses = [f.result(timeout=60) for f in futures]
    # At most the limit; fewer is possible when two counters (address and username) race in
    # different orders and each turns away the attempt the other let in.
    assert 1 <= checks.checked <= 10
    assert sorted(statuses) == [200] * checks.checked + [429] * (40 - checks.checked)


# --- sign-up and password reset ------------------------------------------------------------------


def test_sign_ups_are_limited_per_address(client, db, settings):
    settings.HOLDOUT_RATELIMIT_SIGNUP = "2/3600"
    for n in range(3):
        response = client.post(
            reverse("signup"),
            {
                "username": f"new{n}",
                "email": f"new{n}@example.com",
                "password1": PASSWORD,
                "password2": PASSWORD,
            },
            REMOTE_ADDR="10.2.0.1",
        )
        if n < 2:
            assert response.status_code == 302
            client.logout()
    _assert_limited_html(response, "sign-ups")
    assert int(response["Retry-After"]) <= 3600
    # Another address is not affected.
    other = Client().post(reverse("signup"), {"username": "x"}, REMOTE_ADDR="10.2.0.2")
    assert other.status_code == 200


def test_password_reset_requests_are_limited(client, learner, settings):
    settings.HOLDOUT_RATELIMIT_PASSWORD_RESET = "2/3600"
    url = reverse("password_reset")
    statuses = [client.post(url, {"email": "lena@example.com"}).status_code for _ in range(3)]
    assert statuses == [302, 302, 429]


def test_confirmation_e_mails_are_limited_per_user(client, learner, settings, mailoutbox):
    settings.HOLDOUT_RATELIMIT_EMAIL_CONFIRM = "2/3600"
    client.force_login(learner)
    statuses = [client.post(reverse("email_confirm_resend")).status_code for _ in range(3)]
    assert statuses == [302, 302, 429]
    assert len(mailoutbox) == 2


# --- submissions ---------------------------------------------------------------------------------


def _submit(client: Client, competition, **extra):
    upload = SimpleUploadedFile("preds.csv", perfect_submission(competition))
    return client.post(reverse("competition_submit", args=[competition.slug]), {"file": upload}, **extra)


def test_submissions_are_limited_per_user_not_per_address(client, learner, joined, competition, settings):
    settings.HOLDOUT_RATELIMIT_SUBMIT = "2/60"
    client.force_login(learner)
    assert [_submit(client, competition).status_code for _ in range(2)] == [302, 302]
    _assert_limited_html(_submit(client, competition), "submissions")
    assert Submission.objects.count() == 2

    # A classmate on the same address has a budget of their own.
    classmate = make_user("mia")
    services.competition_join(user=classmate, competition=competition)
    other = Client()
    other.force_login(classmate)
    assert _submit(other, competition).status_code == 302


def test_submission_page_reads_are_not_counted(client, learner, joined, competition, settings):
    settings.HOLDOUT_RATELIMIT_SUBMIT = "1/60"
    client.force_login(learner)
    for _ in range(10):
        assert client.get(reverse("competition_submit", args=[competition.slug])).status_code == 200
    assert _submit(client, competition).status_code == 302


def test_web_and_api_submissions_share_one_budget(client, learner, joined, competition, settings):
    settings.HOLDOUT_RATELIMIT_SUBMIT = "2/60"
    client.force_login(learner)
    assert _submit(client, competition).status_code == 302
    rpc = "/api/v1/competitions.CompetitionApiService/CreateSubmission"
    assert client.post(rpc, "{}", content_type="application/json").status_code != 429
    response = client.post(
        f"/api/competitions/{competition.slug}/submissions/", "{}", content_type="application/json"
    )
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["detail"].startswith("Too many submissions: at most 2 every minute.")
    assert body["retry_after"] == int(response["Retry-After"])


def test_other_api_writes_have_their_own_limit(client, db, settings):
    settings.HOLDOUT_RATELIMIT_API = "2/60"
    settings.HOLDOUT_RATELIMIT_SUBMIT = "100/60"
    rpc = "/api/v1/competitions.CompetitionApiService/ListCompetitions"
    statuses = [client.post(rpc, "{}", content_type="application/json").status_code for _ in range(3)]
    assert statuses[:2] != [429, 429]
    assert statuses[2] == 429
    assert client.get("/api/competitions/").status_code != 429


# --- attached to the views, not to paths ------------------------------------------------------

RPC = "competitions.CompetitionApiService"


@dataclass(frozen=True)
class Limited:
    """A limited endpoint: its URL name and arguments, the path tests/ratelimit_urls.py moves it
    to, how it is called, and the limit (a key of ratelimit.LIMITS) that must stop it."""

    url_name: str
    args: tuple
    renamed: str
    limit: str
    method: str = "post"
    data: dict = field(default_factory=dict)
    signed_in: bool = False
    api_key: bool = False


LIMITED = [
    Limited("login", (), "/sign-in/", "login", data={"username": "lena", "password": "wrong"}),
    Limited("admin:login", (), "/staff/login/", "login", data={"username": "lena", "password": "wrong"}),
    Limited("signup", (), "/join-up/", "signup", data={"username": "x"}),
    Limited("password_reset", (), "/forgot/", "password_reset", data={"email": "lena@example.com"}),
    Limited("password_reset_confirm", ("MQ", "bad-token"), "/forgot/MQ/bad-token/", "password_reset"),
    Limited("email_confirm_resend", (), "/resend/", "email_confirm", signed_in=True),
    Limited("competition_submit", ("{slug}",), "/hand-in/{slug}/", "submit", signed_in=True),
    Limited("api_submission_list", ("{slug}",), "/rest/{slug}/entries/", "submit", api_key=True),
    Limited(
        "kaggle_rpc",
        (RPC, "StartSubmissionUpload"),
        f"/rpc/{RPC}/StartSubmissionUpload",
        "submit",
        api_key=True,
    ),
    Limited("kaggle_rpc", (RPC, "CreateSubmission"), f"/rpc/{RPC}/CreateSubmission", "submit", api_key=True),
    Limited("kaggle_blob_upload", ("not-a-token",), "/put/not-a-token", "submit", method="put"),
    Limited("kaggle_rpc", (RPC, "ListCompetitions"), f"/rpc/{RPC}/ListCompetitions", "api", api_key=True),
    Limited("api_submission_detail", ("{slug}", 1), "/rest/{slug}/entries/1/", "api", "patch", api_key=True),
]


def _case_id(case: Limited) -> str:
    return "-".join([case.url_name, *(str(a) for a in case.args if a != RPC and "{" not in str(a))])


def _only_limit(settings, name: str) -> None:
    for limit in ratelimit.LIMITS.values():
        setattr(settings, limit.setting, "")
    setattr(settings, ratelimit.LIMITS[name].setting, "1/60")


def _second_call_is_limited(case: Limited, path: str, learner) -> None:
    client = Client()
    if case.signed_in:
        client.force_login(learner)
    headers = {}
    if case.api_key:
        headers["HTTP_AUTHORIZATION"] = f"Token {api_key_create(learner)}"
    call = getattr(client, case.method)
    if case.method == "post" and not path.startswith(("/api/", "/rest/", "/rpc/")):
        responses = [call(path, case.data, **headers) for _ in range(2)]
    else:
        responses = [
            call(path, json.dumps(case.data), content_type="application/json", **headers) for _ in range(2)
        ]
    assert responses[0].status_code != 429
    assert responses[1].status_code == 429, responses[1].content[:300]
    assert f"Too many {ratelimit.LIMITS[case.limit].what}" in responses[1].content.decode()


@pytest.mark.parametrize("case", LIMITED, ids=_case_id)
def test_each_limited_endpoint_is_limited_by_name(case, learner, joined, competition, settings):
    _only_limit(settings, case.limit)
    args = [str(a).format(slug=competition.slug) if isinstance(a, str) else a for a in case.args]
    _second_call_is_limited(case, reverse(case.url_name, args=args), learner)


@pytest.mark.parametrize("case", LIMITED, ids=_case_id)
def test_a_renamed_path_keeps_its_limit(case, learner, joined, competition, settings):
    settings.ROOT_URLCONF = "tests.ratelimit_urls"
    _only_limit(settings, case.limit)
    _second_call_is_limited(case, case.renamed.format(slug=competition.slug), learner)


# --- configuration and failure modes -------------------------------------------------------------


@pytest.mark.parametrize("value", ["10", "ten/60", "10/0", "10 per minute", "-1/60"])
def test_malformed_limits_refuse_to_start(settings, value):
    settings.HOLDOUT_RATELIMIT_SUBMIT = value
    with pytest.raises(ImproperlyConfigured, match="HOLDOUT_RATELIMIT_SUBMIT must look like COUNT/SECONDS"):
        ratelimit.check_limits()


def test_an_empty_limit_turns_it_off(client, learner, settings):
    settings.HOLDOUT_RATELIMIT_LOGIN = ""
    for _ in range(12):  # past the default 10/60
        assert _login(client, "lena", "wrong").status_code == 200


def break_the_cache(settings) -> None:
    """Point the counters at a Redis that is not there."""
    settings.CACHES = {
        **settings.CACHES,
        "broken": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }
    settings.HOLDOUT_RATELIMIT_CACHE = "broken"


def test_cache_outage_lets_requests_through(client, learner, settings):
    break_the_cache(settings)
    settings.HOLDOUT_RATELIMIT_LOGIN = "1/60"
    assert [_login(client, "lena", "wrong").status_code for _ in range(3)] == [200, 200, 200]
    assert _login(client, "lena", PASSWORD).status_code == 302


def test_client_address_behind_a_trusted_proxy(settings):
    factory = RequestFactory()
    request = factory.get("/", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    settings.HOLDOUT_TRUSTED_PROXY_COUNT = 0
    assert ratelimit.client_ip(request) == "10.9.9.9"
    settings.HOLDOUT_TRUSTED_PROXY_COUNT = 1
    # The left entry is whatever the client sent; the proxy appended the real one.
    assert ratelimit.client_ip(request) == "203.0.113.7"
    spoof = factory.get("/", REMOTE_ADDR="10.9.9.9")
    assert ratelimit.client_ip(spoof) == "10.9.9.9"
