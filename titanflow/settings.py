"""TitanFlow settings: one file, every value from the environment.

A bad or missing value fails at start-up with the variable's name, never later at run time.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (
    env.str("TITANFLOW_READ_DOTENV", default="true").lower() != "false"
    and (BASE_DIR / ".env").exists()
):
    environ.Env.read_env(BASE_DIR / ".env")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _strict_bool(name: str, *, default: bool) -> bool:
    raw = env.str(name, default=str(default)).strip().lower()
    if raw not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")
    return raw in _TRUE


def _required_secret(name: str, *, debug: bool) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if debug:
        return f"insecure-dev-only-{name.lower()}"
    raise ImproperlyConfigured(f"{name} must be set when DEBUG is off")


def _database(name: str) -> dict:
    raw = env.str(name, default="postgres://postgres@127.0.0.1:5432/titanflow")
    if "://" not in raw:
        raise ImproperlyConfigured(f"{name} is not a database URL: {raw!r}")
    try:
        config = env.db_url_config(raw)
    except Exception as exc:  # django-environ raises several kinds for malformed URLs
        raise ImproperlyConfigured(f"{name} is malformed: {exc}") from exc
    if not config.get("ENGINE") or "postgresql" not in config["ENGINE"]:
        raise ImproperlyConfigured(f"{name} must be a postgres:// URL, got {raw!r}")
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} names no database: {raw!r}")
    config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    config["CONN_HEALTH_CHECKS"] = True
    return config


DEBUG = _strict_bool("DEBUG", default=False)
SECRET_KEY = _required_secret("SECRET_KEY", debug=DEBUG)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

DATABASES = {"default": _database("DATABASE_URL")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL must be a redis:// URL, got {REDIS_URL!r}")

# Where recipients reach this TitanFlow: tracked links go out as PUBLIC_BASE_URL/r/<token>.
PUBLIC_BASE_URL = env.url("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").geturl().rstrip("/")
WHATSAPP_GRAPH_URL = env.url("WHATSAPP_GRAPH_URL", default="https://graph.facebook.com").geturl()
WHATSAPP_API_VERSION = env.str("WHATSAPP_API_VERSION", default="v23.0")
if not WHATSAPP_API_VERSION.startswith("v"):
    raise ImproperlyConfigured(
        f"WHATSAPP_API_VERSION looks like v23.0, got {WHATSAPP_API_VERSION!r}"
    )
META_APP_SECRET = env.str("META_APP_SECRET", default="")
META_VERIFY_TOKEN = env.str("META_VERIFY_TOKEN", default="")
FIELD_ENCRYPTION_KEY = _required_secret("FIELD_ENCRYPTION_KEY", debug=DEBUG)
DEFAULT_PHONE_REGION = env.str("DEFAULT_PHONE_REGION", default="AE").upper()
if len(DEFAULT_PHONE_REGION) != 2 or not DEFAULT_PHONE_REGION.isalpha():
    raise ImproperlyConfigured(
        f"DEFAULT_PHONE_REGION must be a two-letter region code, got {DEFAULT_PHONE_REGION!r}"
    )

TEMPLATE_SYNC_INTERVAL_MINUTES = env.int("TEMPLATE_SYNC_INTERVAL_MINUTES", default=30)
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=30)
# A status whose message is not written yet is retried this long before it is kept as given up.
WEBHOOK_STATUS_GRACE_MINUTES = env.int("WEBHOOK_STATUS_GRACE_MINUTES", default=60)
# A reply without context.id belongs to the latest campaign message sent within this window.
REPLY_ATTRIBUTION_HOURS = env.int("REPLY_ATTRIBUTION_HOURS", default=72)
OPT_OUT_KEYWORDS = env.list(
    "OPT_OUT_KEYWORDS", default=["STOP", "UNSUBSCRIBE", "STOP ALL", "OPT OUT", "CANCEL"]
)
# The sending engine (campaigns/engine). A slice is one task's bounded run for one sender.
ENGINE_SLICE_SECONDS = env.float("ENGINE_SLICE_SECONDS", default=5.0)
# A slice that reaches its end while no other slice waits for a worker process goes on for
# another ENGINE_SLICE_SECONDS, up to this long: every slice boundary costs a claim, an arm and
# a flush without sending (6-10% of a paced number's rate at 5-second slices).
ENGINE_SLICE_MAX_SECONDS = env.float("ENGINE_SLICE_MAX_SECONDS", default=60.0)
# A slice renews its contacts' lease every quarter of it, so only a dead or stalled worker's
# claims expire; then the unsent ones return to the pool at once (the reaper runs every 5 s).
ENGINE_LEASE_SECONDS = env.float("ENGINE_LEASE_SECONDS", default=20.0)
# One slice per sender at a time, by a Redis lock the slice renews as it runs: a killed worker's
# senders are free again this long after it died, and the next 5-second watch restarts them.
ENGINE_LOCK_SECONDS = env.float("ENGINE_LOCK_SECONDS", default=8.0)
# Results are written in one statement per flush; shorter means livelier pages, more statements.
# Meta's first status comes 0.05-0.2 s after a send; one that comes before its message is
# written waits a second or more to be tried again (webhooks/processor.py), so a flush every
# 0.25 s keeps most statuses from waiting, for ~0.02 statements per message.
ENGINE_FLUSH_SECONDS = env.float("ENGINE_FLUSH_SECONDS", default=0.25)
# The nice value of a worker that consumes only the send queue (campaigns/engine/priority.py):
# on a saturated machine sending gives way to Meta's webhooks. 0 leaves it as started.
ENGINE_SEND_NICE = env.int("ENGINE_SEND_NICE", default=10)
if not 0 <= ENGINE_SEND_NICE <= 19:
    raise ImproperlyConfigured("ENGINE_SEND_NICE must be between 0 and 19")
# A flush (sends Meta accepted) is retried through a lost database connection this long.
ENGINE_DB_RETRY_SECONDS = env.float("ENGINE_DB_RETRY_SECONDS", default=120.0)
# A send whose answer never came waits this long for its status webhook before it is resent.
ENGINE_AMBIGUOUS_GRACE_SECONDS = env.float("ENGINE_AMBIGUOUS_GRACE_SECONDS", default=300.0)
# A slice's sends in flight at once, each on its own keep-alive connection (whatsapp/mux.py).
ENGINE_MAX_IN_FLIGHT = env.int("ENGINE_MAX_IN_FLIGHT", default=64)
# How long a send waits for Meta's answer before it counts as ambiguous (never resent blindly).
ENGINE_READ_TIMEOUT_SECONDS = env.float("ENGINE_READ_TIMEOUT_SECONDS", default=15.0)
# Every requeue of a contact counts an attempt, whoever reported the failure; past this it fails.
ENGINE_MAX_ATTEMPTS = env.int("ENGINE_MAX_ATTEMPTS", default=8)
# `manage.py bench` turns this on in its workers to count the hot path's statements.
ENGINE_COUNT_STATEMENTS = _strict_bool("ENGINE_COUNT_STATEMENTS", default=False)
# 131048 (spam rate limit) pauses a number briefly; this many within a minute exhausts it.
ENGINE_SPAM_THRESHOLD = env.int("ENGINE_SPAM_THRESHOLD", default=3)
# Deliverability guard: a YELLOW number sends at this share of its rate.
ENGINE_YELLOW_RATE_FACTOR = env.float("ENGINE_YELLOW_RATE_FACTOR", default=0.5)
# A held sender (RED number, portfolio limit reached) looks again at least this often.
ENGINE_HOLD_POLL_SECONDS = env.float("ENGINE_HOLD_POLL_SECONDS", default=30.0)
# 131049 (Meta's per-user marketing cap): retried no sooner than this, at most this many times.
ENGINE_MARKETING_CAP_RETRY_SECONDS = env.float(
    "ENGINE_MARKETING_CAP_RETRY_SECONDS", default=86400.0
)
ENGINE_MARKETING_CAP_RETRIES = env.int("ENGINE_MARKETING_CAP_RETRIES", default=2)
if not 0 < ENGINE_YELLOW_RATE_FACTOR <= 1 or ENGINE_HOLD_POLL_SECONDS <= 0:
    raise ImproperlyConfigured(
        "ENGINE_YELLOW_RATE_FACTOR must be in (0, 1] and ENGINE_HOLD_POLL_SECONDS positive"
    )
# How often the beat looks for A/B tests whose winner is due (campaigns/ab/services.py).
AB_DECIDE_INTERVAL_SECONDS = env.float("AB_DECIDE_INTERVAL_SECONDS", default=30.0)
if AB_DECIDE_INTERVAL_SECONDS <= 0:
    raise ImproperlyConfigured("AB_DECIDE_INTERVAL_SECONDS must be positive")
# An import whose task shows no progress for this long is queued again (a lost task).
IMPORT_STALL_MINUTES = env.int("IMPORT_STALL_MINUTES", default=10)
if ENGINE_LEASE_SECONDS < 4 * ENGINE_FLUSH_SECONDS or ENGINE_LOCK_SECONDS < 2:
    raise ImproperlyConfigured(
        "ENGINE_LEASE_SECONDS must be at least four flushes, ENGINE_LOCK_SECONDS at least 2 s"
    )

# Uploaded contact lists (campaigns/importing): each bound is checked while the file streams,
# so a compressed bomb or a one-line file is refused after reading no more than its limit.
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=100 * 1024 * 1024)
IMPORT_MAX_INFLATED_BYTES = env.int("IMPORT_MAX_INFLATED_BYTES", default=500 * 1024 * 1024)
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=1_000_000)
IMPORT_MAX_COLUMNS = env.int("IMPORT_MAX_COLUMNS", default=200)
IMPORT_MAX_LINE_BYTES = env.int("IMPORT_MAX_LINE_BYTES", default=1024 * 1024)
IMPORT_MAX_FIELD_BYTES = env.int("IMPORT_MAX_FIELD_BYTES", default=64 * 1024)
# Lists of campaigns that finished importing are deleted this long after upload (0 = never).
IMPORT_FILE_RETENTION_DAYS = env.int("IMPORT_FILE_RETENTION_DAYS", default=30)
for _name in (
    "IMPORT_MAX_BYTES",
    "IMPORT_MAX_INFLATED_BYTES",
    "IMPORT_MAX_ROWS",
    "IMPORT_MAX_COLUMNS",
    "IMPORT_MAX_LINE_BYTES",
    "IMPORT_MAX_FIELD_BYTES",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be a positive number")
if IMPORT_FILE_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("IMPORT_FILE_RETENTION_DAYS must be 0 or more")

MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
MEDIA_URL = "/media/"
VAR_DIR = BASE_DIR / "var"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_filters",
    "django_htmx",
    "template_partials",
    "axes",
    "titanflow",
    "templates_app",
    "campaigns",
    "inbox",
    "webhooks",
]

MIDDLEWARE = [
    "titanflow.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "titanflow.auth.LoginRequiredMiddleware",
    "titanflow.middleware.AdminNulQueryMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "titanflow.urls"
WSGI_APPLICATION = "titanflow.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# The three roles are Django groups (titanflow/access.py says what each may do).
ADMIN_GROUP = "admins"
MARKETER_GROUP = "marketers"
VIEWER_GROUP = "viewers"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads nothing from it: the token goes in <body hx-headers>
SESSION_COOKIE_SECURE = _strict_bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# HSTS goes out on HTTPS answers only (Django's SecurityMiddleware); 0 turns it off.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _strict_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = _strict_bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT = _strict_bool("SECURE_SSL_REDIRECT", default=False)


def _proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """ "X-Forwarded-Proto: https" for a TLS proxy that sets that header (and strips it from
    clients: trusting it from anyone else would let them claim HTTPS)."""
    raw = env.str(name, default="").strip()
    if not raw:
        return None
    header, sep, value = raw.partition(":")
    if not sep or not header.strip() or not value.strip():
        raise ImproperlyConfigured(f"{name} looks like 'X-Forwarded-Proto: https', got {raw!r}")
    return "HTTP_" + header.strip().upper().replace("-", "_"), value.strip()


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header("SECURE_PROXY_SSL_HEADER")

# Pages carry no inline script (static/js holds every script), so scripts come from here only;
# inline style attributes remain (progress bars), hence 'unsafe-inline' for styles alone.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Login throttling (django-axes): after this many wrong passwords for one username from one
# address, even the right one is refused until the cool-off has passed.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
if AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT must be 1 or more")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on start when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve straight from static/ in the demo without collectstatic
DATA_UPLOAD_MAX_MEMORY_SIZE = 3 * 1024 * 1024  # Meta's largest delivery is well under 3 MB
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# The temporary-file handler stops writing an upload past IMPORT_MAX_BYTES (the form then
# refuses it by its size), so an oversized upload never fills the disk.
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "titanflow.uploads.BoundedTemporaryFileUploadHandler",
]

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
}


def _rate(name: str, *, default: str) -> str:
    raw = env.str(name, default=default).strip()
    count, _, period = raw.partition("/")
    if not count.isdigit() or period not in ("second", "minute", "hour", "day"):
        raise ImproperlyConfigured(f"{name} looks like 1200/minute, got {raw!r}")
    return raw


REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["titanflow.access.RolePermission"],
    "DEFAULT_PARSER_CLASSES": [
        "titanflow.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    # Per token (user) and per address (anonymous); counted in the Redis cache.
    "DEFAULT_THROTTLE_RATES": {
        "user": _rate("API_THROTTLE_USER", default="1200/minute"),
        "anon": _rate("API_THROTTLE_ANON", default="60/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "TitanFlow API",
    "VERSION": "1.0.0",
    "DESCRIPTION": (
        "Build, launch and follow WhatsApp campaigns. Authenticate with the token from your "
        "API token page (/tokens/): `Authorization: Token <key>`. In the browser, the session "
        "of a logged-in user works too. Marketers reach their own campaigns, viewers read only."
    ),
    "SERVE_PERMISSIONS": ["titanflow.access.RolePermission"],
    "SERVE_INCLUDE_SCHEMA": False,
    # Write-only fields (tokens, secrets) in requests only, so response types are exact.
    "COMPONENT_SPLIT_REQUEST": True,
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
# Tasks carry ids only; JSON keeps them readable and safe.
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A worker killed mid-task must not lose it: ack after the work, redeliver on loss.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Long prefetch would park send slices behind one busy worker; take one at a time.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redelivery of an unacked task after this long; longer than any slice we run.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Results are rarely read; keep Redis lean.
CELERY_RESULT_EXPIRES = 3600
# One queue per kind of work, so none waits behind another (on one queue, send slices sat 12-23 s
# behind dozens of webhook runs); the Procfile runs a worker for each (README, "More workers").
WORK_QUEUES = ("send", "webhooks", "import", "default")
# Anything not routed below (asset sync, beat's campaign watch and lease reaper) goes here.
CELERY_TASK_DEFAULT_QUEUE = "default"
# Routed by task name, so beat's entries and every apply_async follow the same table.
CELERY_TASK_ROUTES = {
    "campaigns.tasks.send_slice": {"queue": "send"},
    "webhooks.tasks.process_pending": {"queue": "webhooks"},
    "campaigns.import_contacts": {"queue": "import"},
}
CELERY_TASK_ALWAYS_EAGER = _strict_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Periodic jobs live in code (beat_schedule in titanflow/celery.py), not in the database.
CELERY_BEAT_SCHEDULER = "celery.beat:PersistentScheduler"
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / "var" / "celerybeat-schedule")
CELERY_TIMEZONE = TIME_ZONE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes logs every login at INFO; its lockouts (WARNING) are what an operator needs.
    "loggers": {"axes": {"level": "WARNING"}},
}
