"""Django settings for Holdout.

Everything that differs between a laptop, CI and production comes from the environment through
the typed helpers in config.env. The defaults run the whole platform on one machine with no
services to install: SQLite under var/ and a Redis server that `manage.py serve` starts on a
unix socket under var/ (config.embedded_redis).
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config import embedded_redis
from config.api_settings import API_APPS, REST_FRAMEWORK, SPECTACULAR_SETTINGS  # noqa: F401
from config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HOLDOUT_VAR_DIR", str(BASE_DIR / "var")))

# Local development (`make demo`, `make serve`, the test suite) runs on embedded defaults: a
# development secret key, SQLite under var/, localhost only. Anything else (gunicorn, the
# containers) starts in production mode: DEBUG off, no traceback pages, and SECRET_KEY and
# DATABASE_URL required. Production is the default so that a server started without its
# environment refuses to start instead of running with a public key and tracebacks.
HOLDOUT_DEV = env_bool("HOLDOUT_DEV", False)
DEBUG = env_bool("DEBUG", HOLDOUT_DEV)
_EMBEDDED_DEFAULTS = HOLDOUT_DEV or DEBUG

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not _EMBEDDED_DEFAULTS:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (for local development set HOLDOUT_DEV=1)"
        )
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if _EMBEDDED_DEFAULTS else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    # django.contrib.admin with a site whose sign-in form is rate-limited.
    "competitions.admin_site.HoldoutAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "competitions",
    *API_APPS,
]

MIDDLEWARE = [
    # First: the Kaggle CLI sends absolute-form request lines (POST http://localhost/api/...).
    "competitions.api.middleware.AbsoluteFormMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "platform" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_database_url = env_str("DATABASE_URL")
if not _database_url and not _EMBEDDED_DEFAULTS:
    raise ImproperlyConfigured(
        "DATABASE_URL must be set when DEBUG is off (use PostgreSQL; for local development set HOLDOUT_DEV=1)"
    )
DATABASES = {
    "default": dj_database_url.parse(
        _database_url or f"sqlite:///{VAR_DIR / 'holdout.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take SQLite's write lock up front, so two submissions racing for the
    # last slot of a quota serialise instead of both reading the old count.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    VAR_DIR.mkdir(parents=True, exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "competitions.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "competition_list"
LOGOUT_REDIRECT_URL = "competition_list"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files ----------------------------------------------------------------------------------
# Two storages: "default" holds what participants may download (data files, always through a
# view that checks they joined); "private" holds solutions and submissions and has no URL at all.
# Both go through Django's storage API, so pointing them at S3 (django-storages) lets workers on
# other hosts read the same files; see docs/deployment.md.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
PRIVATE_ROOT = Path(env_str("PRIVATE_ROOT", str(VAR_DIR / "private")))
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "platform" / "static"]
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": None},
    },
    "private": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(PRIVATE_ROOT), "base_url": None},
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}
# Uploads larger than this are streamed to a temporary file instead of held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    # First: drops a file as soon as it streams past HOLDOUT_MAX_UPLOAD_BYTES, so a huge upload
    # is never written whole; the form then says why.
    "competitions.upload_limits.SizeCappedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Hard ceiling for any request body the site accepts; per-competition limits are lower.
HOLDOUT_MAX_UPLOAD_BYTES = env_int("HOLDOUT_MAX_UPLOAD_MB", 200) * 1024 * 1024
# Compressed submissions (.gz, .zip) may expand to at most this much; a zip bomb fails fast.
HOLDOUT_MAX_DECOMPRESSED_BYTES = env_int("HOLDOUT_MAX_DECOMPRESSED_MB", 1024) * 1024 * 1024
# Failed submissions are not charged, but each still costs a worker: a team may have this many
# uncharged failures per UTC day before further uploads wait for the next day. Unset (or 0):
# twice the challenge's daily limit.
HOLDOUT_FREE_FAILURES_PER_DAY = env_int("HOLDOUT_FREE_FAILURES_PER_DAY", 0) or None
# Where workers cache prepared solutions copied out of private storage.
HOLDOUT_WORKER_CACHE = Path(env_str("HOLDOUT_WORKER_CACHE", str(VAR_DIR / "worker-cache")))
# The model sandbox's kernel layers (workers/modelrun/isolation.py). A layer the host refuses is
# skipped with a warning unless listed here, which makes it fatal (set all four in production).
HOLDOUT_SANDBOX_LAYERS = ("user", "net", "mount", "seccomp")
HOLDOUT_SANDBOX_REQUIRE = env_list("HOLDOUT_SANDBOX_REQUIRE", [])
if set(HOLDOUT_SANDBOX_REQUIRE) - set(HOLDOUT_SANDBOX_LAYERS):
    raise ImproperlyConfigured(
        f"HOLDOUT_SANDBOX_REQUIRE takes {', '.join(HOLDOUT_SANDBOX_LAYERS)}; got {HOLDOUT_SANDBOX_REQUIRE}"
    )
# The unprivileged user a root worker's model child becomes.
HOLDOUT_SANDBOX_USER = env_str("HOLDOUT_SANDBOX_USER", "nobody")

# --- Cache and rate limits -----------------------------------------------------------------
# The rate limiter's counters. Local memory counts per process (3 gunicorn workers: 3x the
# limit); production points CACHE_URL (or REDIS_URL) at Redis so every process shares them.
_cache_url = env_str("CACHE_URL") or env_str("REDIS_URL")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
    if _cache_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
# "N/SECONDS" per client; an empty value turns a limit off.
HOLDOUT_RATELIMIT_LOGIN = env_str("HOLDOUT_RATELIMIT_LOGIN", "10/60")
HOLDOUT_RATELIMIT_SIGNUP = env_str("HOLDOUT_RATELIMIT_SIGNUP", "10/3600")
HOLDOUT_RATELIMIT_PASSWORD_RESET = env_str("HOLDOUT_RATELIMIT_PASSWORD_RESET", "5/3600")
# Asking for another e-mail confirmation link (per user): each one sends an e-mail.
HOLDOUT_RATELIMIT_EMAIL_CONFIRM = env_str("HOLDOUT_RATELIMIT_EMAIL_CONFIRM", "5/3600")
HOLDOUT_RATELIMIT_SUBMIT = env_str("HOLDOUT_RATELIMIT_SUBMIT", "30/60")
HOLDOUT_RATELIMIT_API = env_str("HOLDOUT_RATELIMIT_API", "120/60")
# How many reverse proxies (nginx...) stand in front and append to X-Forwarded-For.
HOLDOUT_TRUSTED_PROXY_COUNT = env_int("HOLDOUT_TRUSTED_PROXY_COUNT", 0)

# --- E-mail ---------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Holdout <noreply@localhost>")

# --- Celery ---------------------------------------------------------------------------------
# The default is the demo's own Redis (config.embedded_redis), on a unix socket under var/,
# which `manage.py serve` starts; production points CELERY_BROKER_URL at its Redis server. Both
# take the same path through Celery. (Celery's filesystem transport is not offered: it can hand
# a worker a half-written message, which kills the worker and loses the task.)
HOLDOUT_EMBEDDED_BROKER_URL = embedded_redis.broker_url(VAR_DIR)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", HOLDOUT_EMBEDDED_BROKER_URL)
if CELERY_BROKER_URL.startswith("filesystem://"):
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL=filesystem:// is no longer supported (it loses tasks under load); "
        "unset it to use the demo's embedded Redis, or point it at a Redis server."
    )
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis re-delivers an unacknowledged message after this long. It must exceed the
    # longest scoring run (the hard time limit), or a slow task is handed to a second worker.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    # A broker that does not answer fails a publish in seconds instead of hanging a request.
    "socket_connect_timeout": 2,
}
# Scores live in the database; nothing reads Celery results.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# acks_late + reject_on_worker_lost: a worker that dies mid-scoring leaves the message to be
# delivered again; the conditional claim in the service makes the second run safe.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per process: scoring runs are long and uneven, prefetching would park
# work behind a busy process while another sits idle.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Soft limit raises inside the task so it can record a clear failure; the hard limit kills a
# process that ignored it.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360)
# A prefork child whose resident memory passed this after a task is replaced by a fresh one,
# so memory an allocator keeps after a large scoring run is not carried into the next ones.
# Scoring itself is bounded by the challenge, not the upload (the row cap follows the solution,
# see docs/reliability.md): about 250 MB plus 120-140 MB per million solution rows per task.
HOLDOUT_WORKER_MAX_MEMORY_MB = env_int("HOLDOUT_WORKER_MAX_MEMORY_MB", 2048)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = HOLDOUT_WORKER_MAX_MEMORY_MB * 1024  # Celery counts KiB
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "holdout.score_submission": {"queue": "scoring"},
    "holdout.reap_stuck_submissions": {"queue": "default"},
    "holdout.delete_stale_uploads": {"queue": "default"},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing runs inside a learner's request (after the upload commits). If the broker is down
# the request must not hang: connect for at most 2 s and retry the publish briefly (about a
# second in all), then give up. The row stays queued and the reaper sends it later.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 3,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.4,
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE = {
    "reap-stuck-submissions": {"task": "holdout.reap_stuck_submissions", "schedule": 60.0},
    "delete-stale-uploads": {"task": "holdout.delete_stale_uploads", "schedule": 3600.0},
}
# A submission queued or scoring for longer than this is re-enqueued by the reaper; after
# HOLDOUT_MAX_SCORING_ATTEMPTS it is failed with a message instead.
HOLDOUT_STUCK_AFTER_SECONDS = env_int("HOLDOUT_STUCK_AFTER_SECONDS", 600)
HOLDOUT_MAX_SCORING_ATTEMPTS = env_int("HOLDOUT_MAX_SCORING_ATTEMPTS", 3)

# --- Security (production) ------------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Health checks answer on plain HTTP inside the container network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# HSTS preload is a commitment an operator makes for the whole domain: off unless they opt in.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

HOLDOUT_POLL_INTERVAL_MS = env_int("HOLDOUT_POLL_INTERVAL_MS", 1000)
HOLDOUT_DEFAULT_PUBLIC_FRACTION = env_float("HOLDOUT_DEFAULT_PUBLIC_FRACTION", 0.3)
