"""Synsight settings, read from the environment with safe local defaults.

With no variables set: SQLite in ``data/``, Celery tasks run in-process (eager), files stored under
``data/media``. See the settings table in README.md for every variable.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_database,
    env_int,
    env_list,
    env_path,
    env_redis_url,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env_path("SYNSIGHT_DATA_DIR", BASE_DIR / "data")
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
_DEV_SECRET = "dev-only-insecure-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = _DEV_SECRET

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "taxonomy",
    "workers",
    "annotation",
    "export",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise (static files answer before reaching it): compresses JSON and HTML only.
    "config.compression.TextGZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before CommonMiddleware's APPEND_SLASH: an API POST without its slash is answered with a sentence.
    "config.api_errors.ApiTrailingSlashMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_ratelimit.middleware.RatelimitMiddleware",
    # Last, so it sees a view's exception first: a database or Redis outage answers 503 with a sentence.
    "config.api_errors.ServiceUnavailableMiddleware",
    # An /api/ URL no route matches answers JSON under DEBUG too (handler404 does it without DEBUG).
    "config.api_errors.DebugApiNotFoundMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {"default": env_database("DATABASE_URL", DATA_DIR / "synsight.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_redis_url("REDIS_URL")
# Cache keys (refit locks, consensus drain requests, the pooled worker of a campaign) name campaigns by id and
# are otherwise global: two Synsight databases sharing one Redis need a prefix each. The web processes and the
# Celery workers of one installation must use the same one.
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX") or ""
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "config.cache.ReusingRedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": CACHE_KEY_PREFIX}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Argon2id first (the modern memory-hard hasher); older hashes still verify and are upgraded on sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "workers.passwords.TokenRevokedOnPasswordChange"},  # not a rule: a new password ends the API token
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
# In development WhiteNoise serves straight from the apps' static folders; production runs collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = env_path("MEDIA_ROOT", DATA_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
if env_str("S3_BUCKET"):
    # Any S3-compatible store (AWS, MinIO, Ceph) through django-storages.
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("S3_BUCKET"),
            "endpoint_url": env_str("S3_ENDPOINT_URL"),
            "region_name": env_str("S3_REGION"),
            "access_key": env_str("S3_ACCESS_KEY_ID"),
            "secret_key": env_str("S3_SECRET_ACCESS_KEY"),
            "querystring_auth": env_bool("S3_QUERYSTRING_AUTH", True),
        },
    }

# ---- Candidate images (annotation/imaging.py, annotation/fetch.py, annotation/services/images.py) -------
IMAGE_MAX_BYTES = env_int("IMAGE_MAX_BYTES", 25 * 2**20, minimum=1)  # per file, upload or URL
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 50_000_000, minimum=1)  # refused before decoding: bombs
IMAGE_MIN_SIDE = env_int("IMAGE_MIN_SIDE", 32, minimum=1)
IMAGE_MAX_ASPECT = env_int("IMAGE_MAX_ASPECT", 10, minimum=1)  # long side / short side
IMAGE_THUMBNAIL_SIDE = env_int("IMAGE_THUMBNAIL_SIDE", 256, minimum=32)
IMAGE_MEDIUM_SIDE = env_int("IMAGE_MEDIUM_SIDE", 1024, minimum=256)
IMAGE_NEAR_DUPLICATE_DISTANCE = env_int("IMAGE_NEAR_DUPLICATE_DISTANCE", 8, minimum=0)  # phash Hamming, of 64
# ... and near-duplicates have nearly the same mean colour (largest R/G/B difference, of 255; annotation.imaging)
IMAGE_NEAR_DUPLICATE_COLOUR = env_int("IMAGE_NEAR_DUPLICATE_COLOUR", 12, minimum=0)
IMAGE_ARCHIVE_MAX_MEMBERS = env_int("IMAGE_ARCHIVE_MAX_MEMBERS", 100_000, minimum=1)
IMAGE_ARCHIVE_MAX_BYTES = env_int("IMAGE_ARCHIVE_MAX_BYTES", 10 * 2**30, minimum=1)  # uncompressed, in total
IMAGE_IMPORT_WORKERS = env_int("IMAGE_IMPORT_WORKERS", os.cpu_count() or 1, minimum=1)  # import_images
IMAGE_IMPORT_MAX_URLS = env_int("IMAGE_IMPORT_MAX_URLS", 10_000, minimum=1)  # per API request
# An API import job silent this long (no chunk, no heartbeat) died: the resume job queues its batch again. Its
# heartbeat comes every 30 s while it downloads, so this must exceed one download (connect + fetch timeouts).
IMAGE_IMPORT_STALE_SECONDS = env_int("IMAGE_IMPORT_STALE_SECONDS", 600, minimum=1)
# An API batch nobody has touched this long (the job queued at creation or by the last step never ran).
IMAGE_IMPORT_PENDING_GRACE_SECONDS = env_int("IMAGE_IMPORT_PENDING_GRACE_SECONDS", 300, minimum=1)
IMAGE_FETCH_CONNECT_TIMEOUT = env_int("IMAGE_FETCH_CONNECT_TIMEOUT", 5, minimum=1)  # seconds
IMAGE_FETCH_TIMEOUT = env_int("IMAGE_FETCH_TIMEOUT", 30, minimum=1)  # seconds for the whole download
IMAGE_FETCH_MAX_REDIRECTS = env_int("IMAGE_FETCH_MAX_REDIRECTS", 3, minimum=0)
IMAGE_FETCH_ALLOW_LOOPBACK = env_bool("IMAGE_FETCH_ALLOW_LOOPBACK", False)  # tests serve images on 127.0.0.1
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("IMAGE_UPLOAD_MAX_FILES", 100, minimum=1)  # files per upload request
CELERY_IMPORTS = ["annotation.image_tasks"]
# ---- end of candidate images ------------------------------------------------------------------------------


# ---- Researcher dashboard (annotation/services/rollups.py, annotation/selectors/dashboard.py) -------------
def _env_pay_floor():
    from decimal import Decimal, InvalidOperation

    raw = env_str("PAY_FLOOR_PER_HOUR", "7.25")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        message = f"PAY_FLOOR_PER_HOUR must be an amount per hour such as 7.25; got {raw!r}."
        raise ImproperlyConfigured(message) from None
    if not value.is_finite() or value < 0:
        raise ImproperlyConfigured(f"PAY_FLOOR_PER_HOUR must be zero or more; got {raw!r}.")
    return value


PAY_FLOOR_PER_HOUR = _env_pay_floor()  # effective hourly pay below this is flagged on the dashboard
DASHBOARD_RECOUNT_SECONDS = env_int("DASHBOARD_RECOUNT_SECONDS", 60, minimum=1)  # candidate figures' age
DASHBOARD_STUCK_MINUTES = env_int("DASHBOARD_STUCK_MINUTES", 30, minimum=1)  # open synset idle this long
# Next-HIT's Retry-After when there is nothing for the worker right now but there may be soon (the last images
# leased to others, or awaiting consensus): the labelling page looks again after this long.
NEXT_HIT_RETRY_SECONDS = env_int("NEXT_HIT_RETRY_SECONDS", 20, minimum=1)
METRICS_TOKEN = env_str("METRICS_TOKEN", "")  # set: /metrics wants "Authorization: Bearer <token>"
CELERY_IMPORTS = [*CELERY_IMPORTS, "annotation.dashboard_tasks"]
# ---- end of researcher dashboard --------------------------------------------------------------------------

# WordNet 3.0 in NLTK's layout, fetched by `manage.py ensure_wordnet` (see taxonomy/wordnet_data.py).
NLTK_DATA_DIR = env_path("NLTK_DATA_DIR", DATA_DIR / "nltk_data")

# Rate limits. API: DRF scoped throttles (per user, or per IP when anonymous). Pages: django-ratelimit on
# sign-in and sign-up, answered with 429 and a sentence.
API_THROTTLE_RATES = {
    "submit": env_str("RATE_SUBMIT", "120/min"),
    "next": env_str("RATE_NEXT", "240/min"),
    "auth": env_str("RATE_AUTH", "20/min"),
}
RATELIMIT_SIGNIN = env_str("RATE_SIGNIN", "10/m")
RATELIMIT_SIGNUP = env_str("RATE_SIGNUP", "5/m")
RATELIMIT_VIEW = "frontend.views.rate_limited"
# Proxies in front of the app that append to X-Forwarded-For: rate limits count clients by the address the
# outermost one saw (config.throttling.client_ip); 0 counts them by the connection's address.
NUM_PROXIES = env_int("NUM_PROXIES", 0, minimum=0)
RATELIMIT_IP_META_KEY = "config.throttling.client_ip"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header turns "not signed in" into 401 rather than 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["config.throttling.WindowRateThrottle"],
    "DEFAULT_THROTTLE_RATES": API_THROTTLE_RATES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Synsight API",
    "DESCRIPTION": "Taxonomy, candidate images, crowd HITs, consensus and exports.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: with no REDIS_URL, tasks run in-process so the app works with no broker at all.
# The broker may be a Redis of its own (CELERY_BROKER_URL); by default it is REDIS_URL's, shared with the cache.
_BROKER_URL = env_redis_url("CELERY_BROKER_URL") or REDIS_URL
# Eager tasks still serialise their arguments through a producer of the in-memory broker; its URL names a host,
# or kombu logs "No hostname was supplied" once per process (it did, in the middle of `make demo`'s output).
CELERY_BROKER_URL = _BROKER_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", _BROKER_URL is None)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# `celery -A config beat` runs these; without beat, refits still start after enough new votes.
CELERY_BEAT_SCHEDULE = {
    "refit-running-campaigns": {"task": "annotation.tasks.refit_running_campaigns", "schedule": 600.0},
    "expire-leases": {"task": "annotation.tasks.expire_leases", "schedule": 60.0},
    # Consensus updates lost to a broker outage or a killed worker (annotation/tasks.py).
    "consensus-sweep": {
        "task": "annotation.tasks.consensus_sweep",
        "schedule": float(env_int("CONSENSUS_SWEEP_SECONDS", 60, minimum=1)),
    },
    "dashboard-recount": {"task": "annotation.dashboard_tasks.recount_active_campaigns", "schedule": 60.0},
    "dashboard-rollups-flush": {"task": "annotation.dashboard_tasks.rollups_flush", "schedule": 30.0},
    # Accepted candidates of box-enabled campaigns enter the box pipeline; expired box leases come back.
    "box-jobs-enter": {"task": "annotation.tasks.box_jobs_enter_all", "schedule": 60.0},
    # Dataset builds whose job was lost (broker down at creation, worker killed mid-build).
    "export-resume": {"task": "export.tasks.dataset_versions_resume", "schedule": 60.0},
    # Scratch folders of killed builds and verifies, files of deleted or failed versions (export/README.md).
    "export-leftovers": {"task": "export.tasks.export_leftovers_remove", "schedule": 3600.0},
    # API image imports whose job was lost (broker down at creation, worker killed mid-step).
    "image-import-resume": {
        "task": "annotation.image_tasks.image_imports_resume",
        "schedule": float(env_int("IMAGE_IMPORT_SWEEP_SECONDS", 60, minimum=1)),
    },
}

# Shared secret with an external crowd marketplace; empty disables external worker sign-in.
EXTERNAL_WORKER_SECRET = env_str("EXTERNAL_WORKER_SECRET", "")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Production hardening: on whenever DEBUG is off (`manage.py check --deploy` is clean with it).
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# A load balancer's probe and a Prometheus scraper talk plain HTTP to the app server (config/health.py; /metrics
# wants its bearer token or an admin's session either way, and the session cookie is never sent over HTTP).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("BEHIND_HTTPS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
if LOG_LEVEL.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL; got {LOG_LEVEL!r}.")
# One line per record on stderr, with when, how bad, which process and which logger: gunicorn's and Celery's
# own lines carry a time and a level, and Django's ("Internal Server Error: /…") need them as much.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL.upper()},
}
