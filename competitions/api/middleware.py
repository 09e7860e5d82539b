"""Requests in absolute form (`POST http://localhost/api/v1/... HTTP/1.1`).

That is how a client talks to an HTTP proxy, and how the Kaggle CLI reaches Holdout: with
KAGGLE_API_ENVIRONMENT=LOCALHOST it calls http://localhost/api/v1/..., and HTTP_PROXY sends
those requests to Holdout's address. gunicorn extracts the path from such a request line, but
Django's development server and the test live server (wsgiref) put the whole URL in PATH_INFO,
which no URL pattern matches.

This middleware must come first in MIDDLEWARE, before anything reads the path or the host.
As RFC 9112 (3.2.2) requires, the host in the request target replaces the Host header, and is
then checked against ALLOWED_HOSTS like any other.
"""

from urllib.parse import urlsplit

ABSOLUTE_PREFIXES = ("http://", "https://")


class AbsoluteFormMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.lower().startswith(ABSOLUTE_PREFIXES):
            target = urlsplit(request.path_info)
            if target.netloc:
                path = target.path or "/"
                request.path_info = path
                request.path = request.META.get("SCRIPT_NAME", "").rstrip("/") + path
                request.META["PATH_INFO"] = path
                request.META["HTTP_HOST"] = target.netloc
        return self.get_response(request)
