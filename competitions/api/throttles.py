"""The API's rate limits, as a DRF throttle with scopes, counted in competitions.ratelimit's
counters (so an API submission and a web-form submission use the same budget).

A view names its limit in `throttle_scope` like DRF's ScopedRateThrottle expects ("submit";
"api" when unset). ScopedRateThrottle itself is not used: its history is read, changed and
written back (concurrent requests overwrite each other's counts) and its rates are
"N/minute"; ours are the atomic fixed windows and `HOLDOUT_RATELIMIT_*` settings of the web
limits, and a cache outage lets requests through rather than failing them.

API clients are counted per user: an API key (Token or HTTP Basic, as the Kaggle CLI sends it)
or a browser session identifies one, so a classroom behind one address does not share a budget.
Anonymous requests count per address.
"""

from django.contrib import auth
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from competitions import ratelimit


class TooManyRequests(exceptions.Throttled):
    """429 with our message; the exception handlers put `wait` in Retry-After."""

    def __init__(self, refused: ratelimit.TooMany) -> None:
        super().__init__(detail=refused.message)  # no wait here: DRF would append its own text
        self.wait = refused.retry_after


class ScopedLimitThrottle(BaseThrottle):
    def allow_request(self, request: Request, view) -> bool:
        if request.method in ratelimit.SAFE_METHODS:
            return True
        scope = getattr(view, "throttle_scope", None) or "api"
        django_request = request._request
        user = request.user
        if not user.is_authenticated and hasattr(django_request, "session"):
            # Views that take no session (the Kaggle RPC) still count a signed-in browser per
            # user. Read from the session: DRF has already replaced django_request.user.
            user = auth.get_user(django_request)
        _, refused = ratelimit.charge(scope, django_request, ratelimit.identity(django_request, user))
        if refused:
            # Raised rather than returning False, so the client reads which limit it hit.
            raise TooManyRequests(refused)
        return True
