"""Settings of the REST API and of its OpenAPI schema.

config.settings imports REST_FRAMEWORK and SPECTACULAR_SETTINGS from here and appends API_APPS
to INSTALLED_APPS.
"""

API_APPS = [
    "rest_framework",
    "drf_spectacular",
    # Swagger UI and ReDoc served from our own static files: the platform must work offline.
    "drf_spectacular_sidecar",
]

REST_FRAMEWORK = {
    # The API key as a token first: a 401 then asks for "Token", which makes browsers show the
    # JSON error instead of a Basic password prompt. Basic carries the key for the Kaggle CLI;
    # the session lets a logged-in learner use the Swagger UI (DRF checks CSRF for it).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "competitions.api.authentication.ApiKeyTokenAuthentication",
        "competitions.api.authentication.ApiKeyBasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "competitions.api.exceptions.exception_handler",
    # Every API view counts its writes against the limit its `throttle_scope` names ("api" by
    # default, "submit" for submissions); see competitions/api/throttles.py.
    "DEFAULT_THROTTLE_CLASSES": ["competitions.api.throttles.ScopedLimitThrottle"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Holdout API",
    "DESCRIPTION": (
        "Competitions, data files, submissions and leaderboards of Holdout. Authenticate with "
        "`Authorization: Token <API key>` (create the key on your profile page), HTTP Basic with "
        "the key as the password, or your browser session. The Kaggle CLI's protocol under "
        "/api/v1/ is described in docs/kaggle-cli.md and not listed here."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
