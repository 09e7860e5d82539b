"""Fixed-window rate limits on the endpoints worth attacking: sign-in, sign-up, password reset and
submissions (web and API).

Only unsafe methods count (POST, PUT, PATCH, DELETE); reading pages is never limited. Counters
live in Django's cache: the local-memory default is per process, so with several gunicorn
workers each has its own counters (limits multiply by the worker count); production should
point the default cache at Redis (docs/reliability.md). If the cache is unreachable the request
is let through and a warning logged: a cache outage must not lock everyone out of the site.

Whom a counter belongs to:

- a signed-in user (session) is counted per user, so a classroom behind one NAT address does not
  share one budget;
- anyone else is counted per client address (REMOTE_ADDR, or the address the trusted proxy
  reports: HOLDOUT_TRUSTED_PROXY_COUNT); API-key clients are not known yet at this point and
  count per address (the API may add per-key throttles of its own);
- sign-in attempts are also counted per attempted username, so guessing one account's password
  from many addresses is slowed too, and only *failed* sign-ins count (a classroom signing in at
  nine o'clock is not throttled; a wrong password is). Each attempt is counted *before* its
  password is checked and handed back if it succeeds, so concurrent guesses cannot all slip
  through while the counter still reads zero; the price is that more than the limit of sign-ins
  in flight at the same instant from one address wait, even if they would have succeeded.

Limits come from settings as "COUNT/SECONDS" strings, read on each request so a test's
`settings` override applies; an empty string turns a limit off. Add the middleware after
AuthenticationMiddleware:

    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "competitions.ratelimit.RateLimitMiddleware", ...]
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
KEY_PREFIX = "holdout:ratelimit"


@dataclass(frozen=True)
class Rule:
    bucket: str  # rules sharing a bucket share counters (web and API submissions)
    pattern: re.Pattern[str]
    setting: str
    default: str
    what: str  # for the message: "sign-in attempts"
    failures_only: bool = False  # count only responses that are not redirects (failed sign-ins)


_SUBMISSION_API = (
    r"^/api/(competitions/[^/]+/submissions/$|v1/blobs/upload/"
    r"|v1/competitions\.CompetitionApiService/(StartSubmissionUpload|CreateSubmission)$)"
)

# First match wins.
RULES = (
    Rule(
        "login",
        # The admin's sign-in form checks the same passwords: one budget for both.
        re.compile(r"^/(accounts|admin)/login/$"),
        "HOLDOUT_RATELIMIT_LOGIN",
        "10/60",
        "failed sign-ins",
        True,
    ),
    Rule("signup", re.compile(r"^/accounts/signup/$"), "HOLDOUT_RATELIMIT_SIGNUP", "10/3600", "sign-ups"),
    Rule(
        "password_reset",
        re.compile(r"^/accounts/(password_reset/|reset/)"),
        "HOLDOUT_RATELIMIT_PASSWORD_RESET",
        "5/3600",
        "password reset requests",
    ),
    Rule(
        "email_confirm",
        re.compile(r"^/accounts/confirm-email/$"),
        "HOLDOUT_RATELIMIT_EMAIL_CONFIRM",
        "5/3600",
        "confirmation e-mails",
    ),
    Rule("submit", re.compile(r"^/c/[^/]+/submit/$"), "HOLDOUT_RATELIMIT_SUBMIT", "30/60", "submissions"),
    Rule("submit", re.compile(_SUBMISSION_API), "HOLDOUT_RATELIMIT_SUBMIT", "30/60", "submissions"),
    Rule("api", re.compile(r"^/api/"), "HOLDOUT_RATELIMIT_API", "120/60", "API requests"),
)


@lru_cache(maxsize=64)
def parse_limit(name: str, value: str) -> tuple[int, int] | None:
    """ "10/60" -> (10, 60); "" -> None (no limit). ImproperlyConfigured for anything else."""
    text = (value or "").strip()
    if not text:
        return None
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if not match or int(match.group(2)) == 0:
        raise ImproperlyConfigured(f"{name} must look like COUNT/SECONDS (e.g. 10/60), got {value!r}")
    return int(match.group(1)), int(match.group(2))


def limit_for(rule: Rule) -> tuple[int, int] | None:
    return parse_limit(rule.setting, getattr(settings, rule.setting, rule.default))


def client_ip(request: HttpRequest) -> str:
    """The client's address. Behind N trusted proxies (HOLDOUT_TRUSTED_PROXY_COUNT) it is the
    N-th address from the right of X-Forwarded-For: entries further left are whatever the
    client chose to send, so they cannot be trusted."""
    proxies = int(getattr(settings, "HOLDOUT_TRUSTED_PROXY_COUNT", 0) or 0)
    if proxies > 0:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _digest(text: str) -> str:
    # Usernames and addresses go into cache keys hashed: bounded length, no odd characters.
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def _identities(request: HttpRequest, rule: Rule) -> list[str]:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        identities = [f"user:{user.pk}"]
    else:
        identities = [f"ip:{_digest(client_ip(request))}"]
    if rule.bucket == "login":
        username = request.POST.get("username", "").strip().lower()
        if username:
            identities.append(f"username:{_digest(username)}")
    return identities


class RateLimitMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response
        # Fail at start-up, not on the first sign-in, when a limit is malformed.
        for rule in RULES:
            limit_for(rule)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rule = self._rule(request)
        if rule is None:
            return self.get_response(request)
        limit = limit_for(rule)
        if limit is None:
            return self.get_response(request)
        count, period = limit
        window = int(time.time() // period)
        keys = [f"{KEY_PREFIX}:{rule.bucket}:{i}:{period}:{window}" for i in _identities(request, rule)]
        if rule.failures_only:
            # Reserve the attempt before the password is checked: a counter read before the
            # (slow) hash and written after it let 40 concurrent guesses all through. A rejected
            # reservation is handed back, so the counters hold attempts that were checked, and a
            # successful sign-in hands its own back, so only failures use up the budget.
            # Every key is counted (no short cut), so that every key can be released.
            if max([self._increment(k, period) for k in keys]) > count:
                self._release(keys)
                return self._too_many(request, rule, count, period)
            response = self.get_response(request)
            if 300 <= response.status_code < 400:  # a successful sign-in redirects
                self._release(keys)
            return response
        if any(self._increment(k, period) > count for k in keys):
            return self._too_many(request, rule, count, period)
        return self.get_response(request)

    @staticmethod
    def _rule(request: HttpRequest) -> Rule | None:
        if request.method in SAFE_METHODS:
            return None
        path = request.path_info
        return next((r for r in RULES if r.pattern.search(path)), None)

    @staticmethod
    def _cache():
        return caches[getattr(settings, "HOLDOUT_RATELIMIT_CACHE", "default")]

    def _increment(self, key: str, period: int) -> int:
        try:
            cache = self._cache()
            # add() only sets a missing key, so concurrent first requests do not reset each
            # other; incr() is atomic in Redis (and under the local-memory cache's lock).
            cache.add(key, 0, timeout=period + 5)
            try:
                return cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=period + 5)
                return 1
        except Exception:
            log.warning("rate limit cache unavailable; letting the request through", exc_info=True)
            return 0

    def _release(self, keys: list[str]) -> None:
        try:
            cache = self._cache()
            for key in keys:
                # ValueError: the window ended meanwhile, nothing to give back.
                with contextlib.suppress(ValueError):
                    cache.decr(key)
        except Exception:
            log.warning("rate limit cache unavailable; could not release a sign-in attempt", exc_info=True)

    @staticmethod
    def _too_many(request: HttpRequest, rule: Rule, count: int, period: int) -> HttpResponse:
        retry_after = max(1, math.ceil(period - time.time() % period))
        message = (
            f"Too many {rule.what}: at most {count} every {_seconds(period)}. "
            f"Please try again in {retry_after} second{'' if retry_after == 1 else 's'}."
        )
        log.info("rate limited %s %s (%s)", request.method, request.path_info, rule.bucket)
        if request.path_info.startswith("/api/"):
            response = JsonResponse({"detail": message, "retry_after": retry_after}, status=429)
        else:
            response = HttpResponse(_HTML.format(message=escape(message)), status=429)
        response["Retry-After"] = str(retry_after)
        return response


def _seconds(n: int) -> str:
    if n % 3600 == 0:
        return "hour" if n == 3600 else f"{n // 3600} hours"
    if n % 60 == 0:
        return "minute" if n == 60 else f"{n // 60} minutes"
    return f"{n} second" + ("" if n == 1 else "s")


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Too many requests · Holdout</title></head>
<body><main><h1>Too many requests</h1><p role="alert">{message}</p>
<p><a href="/">Back to Holdout</a></p></main></body></html>
"""
