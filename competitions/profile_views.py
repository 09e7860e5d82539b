"""The learner's profile page: their challenges with ranks and counts, and their API key.

A new key is shown once, on the response to the POST that created it, with a kaggle.json to
download from a data: link in that same page: nothing keeps the key afterwards, not the session
and not a second URL. The response is marked no-store so that no cache keeps it either.
"""

import json
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from competitions.api_keys import api_key_create
from competitions.models import ApiKey
from competitions.selectors import profile_entries


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    new_key = api_key_create(request.user) if request.method == "POST" else None
    scheme_host = f"{request.scheme}://{request.get_host()}"
    context = {
        "entries": profile_entries(request.user),
        "api_key": ApiKey.objects.filter(user=request.user).first(),
        "new_key": new_key,
        # The Kaggle CLI sends plain-HTTP requests to http://localhost/...; HTTP_PROXY routes them
        # to this server. It must be an http:// address of Holdout (see docs/kaggle-cli.md).
        "proxy_url": scheme_host.replace("https://", "http://", 1),
    }
    if new_key:
        kaggle_json = json.dumps({"username": request.user.get_username(), "key": new_key})
        context["kaggle_json_href"] = "data:application/json;charset=utf-8," + quote(kaggle_json)
    return render(request, "competitions/profile.html", context)
