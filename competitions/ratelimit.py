"""Fixed-window rate limits on the actions worth attacking: sign-in, sign-up, password reset,
confirmation e-mails and submissions (web and API), plus a general limit on API writes.

Each limit has a name (LIMITS) and is attached where its action happens, so renaming a URL
cannot silently drop it: Django views carry `@rate_limited("login")`, the API's DRF views a
throttle scope (competitions.api.throttles). Both count here, in the same counters, so the web
form and the API share one submissions budget per user.

Only unsafe methods count (POST, PUT, PATCH, DELETE); reading pages is never limited. Counters
live in Django's cache: the local-memory default is per process, so with several gunicorn
workers each has its own counters (limits multiply by the worker count); production should
point the default cache at Redis (docs/reliability.md). If the cache is unreachable the request
is let through and a warning logged: a cache outage must not lock everyone out of the site.

Whom a counter belongs to:

- a signed-in user (session or API key) is counted per user, so a classroom behind one NAT
  address does not share one budget;
- anyone else is counted per client address (REMOTE_ADDR, or the address the trusted proxy
  reports: HOLDOUT_TRUSTED_PROXY_COUNT);
- sign-in attempts are also counted per attempted username, so guessing one account's password
  from many addresses is slowed too, and only *failed* sign-ins count (a classroom signing in at
  nine o'clock is not throttled; a wrong password is). Each attempt is counted *before* its
  password is checked and handed back if it succeeds, so concurrent guesses cannot all slip
  through while the counter still reads zero; the price is that more than the limit of sign-ins
  in flight at the same instant from one address wait, even if they would have succeeded.

Limits come from settings as "COUNT/SECONDS" strings, read on each request so a test's
`settings` override applies; an empty string turns a limit off. check_limits() (run when the
app is ready) refuses a malformed one at start-up.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, wraps

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
KEY_PREFIX = "holdout:ratelimit"


@dataclass(frozen=True)
class Limit:
    setting: str
    default: str
    what: str  # for the message: "sign-in attempts"
    failures_only: bool = False  # count only responses that are not redirects (failed sign-ins)


# The name is the counters' bucket: everything limited by "submit" shares one budget.
LIMITS = {
    # The admin's sign-in form checks the same passwords: one budget for both.
    "login": Limit("HOLDOUT_RATELIMIT_LOGIN", "10/60", "failed sign-ins", failures_only=True),
    "signup": Limit("HOLDOUT_RATELIMIT_SIGNUP", "10/3600", "sign-ups"),
    "password_reset": Limit("HOLDOUT_RATELIMIT_PASSWORD_RESET", "5/3600", "password reset requests"),
    "email_confirm": Limit("HOLDOUT_RATELIMIT_EMAIL_CONFIRM", "5/3600", "confirmation e-mails"),
    "submit": Limit("HOLDOUT_RATELIMIT_SUBMIT", "30/60", "submissions"),
    "api": Limit("HOLDOUT_RATELIMIT_API", "120/60", "API requests"),
}


@dataclass(frozen=True)
class TooMany:
    """A refusal: what the client is told, and when its window ends."""

    message: str
    retry_after: int


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


def limit_for(limit: Limit) -> tuple[int, int] | None:
    return parse_limit(limit.setting, getattr(settings, limit.setting, limit.default))


def check_limits() -> None:
    """Fail at start-up, not on the first sign-in, when a limit is malformed."""
    for limit in LIMITS.values():
        limit_for(limit)


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


def user_identity(pk: int) -> str:
    return f"user:{pk}"


def identity(request: HttpRequest, user=None) -> str:
    """Whose budget a request uses: the user's when signed in, else the client address's."""
    user = user if user is not None else getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user_identity(user.pk)
    return f"ip:{_digest(client_ip(request))}"


def charge(name: str, request: HttpRequest, who: str | None = None) -> tuple[list[str], TooMany | None]:
    """Count `request` against the limit `name` for `who` (default: identity(request)).

    Returns the counters it was counted in (release() hands them back) and, past the limit,
    the refusal. A failures-only limit's refused attempt is handed back at once, so its counters
    hold attempts that were checked."""
    limit = LIMITS[name]
    parsed = limit_for(limit)
    if parsed is None:
        return [], None
    count, period = parsed
    window = int(time.time() // period)
    identities = [who or identity(request)]
    if limit.failures_only:
        username = request.POST.get("username", "").strip().lower()
        if username:
            identities.append(f"username:{_digest(username)}")
    keys = [f"{KEY_PREFIX}:{name}:{i}:{period}:{window}" for i in identities]
    # Every key is counted (no short cut), so that every key can be released.
    if max([_increment(k, period) for k in keys]) <= count:
        return keys, None
    if limit.failures_only:
        release(keys)
    log.info("rate limited %s %s (%s)", request.method, request.path_info, name)
    return keys, _too_many(limit, count, period)


def rate_limited(
    name: str, *, who: Callable[..., str | None] | None = None, json: bool = False
) -> Callable[[Callable], Callable]:
    """Limit a Django view's unsafe requests by the limit `name` (a key of LIMITS).

    `who(request, *args, **kwargs)` may name the budget (e.g. the user a signed upload URL was
    issued to); None falls back to identity(request). `json` answers a refusal in the API's JSON
    shape instead of an HTML page."""
    limit = LIMITS[name]  # a typo fails at import

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def limited_view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method in SAFE_METHODS:
                return view(request, *args, **kwargs)
            keys, refused = charge(name, request, who(request, *args, **kwargs) if who else None)
            if refused:
                return too_many_response(refused, json=json)
            # A failures-only attempt was reserved before the password is checked: a counter
            # read before the (slow) hash and written after it let 40 concurrent guesses all
            # through. A successful sign-in redirects and hands its reservation back.
            response = view(request, *args, **kwargs)
            if limit.failures_only and 300 <= response.status_code < 400:
                release(keys)
            return response

        return limited_view

    return decorator


def _cache():
    return caches[getattr(settings, "HOLDOUT_RATELIMIT_CACHE", "default")]


def _increment(key: str, period: int) -> int:
    try:
        cache = _cache()
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


def release(keys: list[str]) -> None:
    try:
        cache = _cache()
        for key in keys:
            # ValueError: the window ended meanwhile, nothing to give back.
            with contextlib.suppress(ValueError):
                cache.decr(key)
    except Exception:
        log.warning("rate limit cache unavailable; could not release a sign-in attempt", exc_info=True)


def _too_many(limit: Limit, count: int, period: int) -> TooMany:
    retry_after = max(1, math.ceil(period - time.time() % period))
    message = (
        f"Too many {limit.what}: at most {count} every {_seconds(period)}. "
        f"Please try again in {retry_after} second{'' if retry_after == 1 else 's'}."
    )
    return TooMany(message, retry_after)


def too_many_response(refused: TooMany, *, json: bool = False) -> HttpResponse:
    if json:
        body = {"detail": refused.message, "retry_after": refused.retry_after}
        response = JsonResponse(body, status=429)
    else:
        response = HttpResponse(_HTML.format(message=escape(refused.message)), status=429)
    response["Retry-After"] = str(refused.retry_after)
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
