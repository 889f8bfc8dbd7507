"""Settings for the KING OF TIME ⇄ SenseLink portal.

Everything comes from one django-environ ``env`` object (environment variables, then an optional
``.env`` beside manage.py). Development defaults are safe; production values that are missing or
malformed stop start-up with a message that says which variable to fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import django_stubs_ext
import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

# ModelAdmin, Paginator and the other classes django-stubs types as generic get a
# __class_getitem__ that returns the class itself, so `admin.ModelAdmin[Tenant]` can be a base
# class at runtime as it is for mypy. Nothing else changes; it must run before any admin loads.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False, parse_comments=True)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _strict_bool(name: str, default: bool) -> bool:
    """A boolean that refuses anything but an obvious yes or no (env.bool takes "maybe" as no).

    Every boolean setting read from the environment goes through here: ``SECURE_COOKIES=ture``
    stops start-up instead of silently turning secure cookies off.
    """
    raw = env.str(name, default=str(default)).strip().lower()
    if raw not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")
    return raw in _TRUE


DEBUG = _strict_bool("DEBUG", False)

# Only a development machine may fall back to a throwaway key.
_DEV_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is not set. Generate one and put it in the environment.")
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is the development key; set a real one when DEBUG is off."
    )


def _encryption_keys(raw: str) -> list[str]:
    """Parse FIELD_ENCRYPTION_KEY (a comma list: the first key encrypts, all decrypt)."""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY is not set. It encrypts the KOT token and the SenseLink App "
            "Secret; generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        )
    for index, key in enumerate(keys):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEY entry #{index + 1} is malformed: each key must be 32 "
                "url-safe base64-encoded bytes (a Fernet key)."
            ) from None
    return keys


# A fixed key for development and tests only, so a checkout works before `.env` exists.
_DEV_ENCRYPTION_KEY = "ZGV2ZWxvcG1lbnQtb25seS1rZXktbm90LWZvci1wcmQ="
FIELD_ENCRYPTION_KEY = _encryption_keys(
    env.str("FIELD_ENCRYPTION_KEY", default=_DEV_ENCRYPTION_KEY if DEBUG else "")
)
if not DEBUG and _DEV_ENCRYPTION_KEY in FIELD_ENCRYPTION_KEY:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEY is the development key; set a real one when DEBUG is off."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "portal.admin_site.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # runserver leaves static files to WhiteNoise too, so development serves them as production.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "portal.apps.TaskQueueConfig",  # django_q, named in Japanese
    "portal.apps.LoginLockoutConfig",  # axes, named in Japanese
    # Two-factor login (TOTP, recovery codes) and the audit trail (変更履歴).
    "django_otp",
    "portal.apps.TotpDevicesConfig",  # django_otp's TOTP devices, named in Japanese
    "portal.apps.RecoveryCodesConfig",  # django_otp's recovery codes, named in Japanese
    "auditlog",
    "integrations",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin CSS, tenant pages) straight from gunicorn, before sessions or auth.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "portal.middleware.ChosenLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed the second factor (django-otp);
    # then the gate that sends a session still owing it to the code page (portal.two_factor).
    "django_otp.middleware.OTPMiddleware",
    "portal.two_factor.SecondFactorMiddleware",
    # Who changed a tenant's settings or members, for the 変更履歴 (django-auditlog).
    "portal.audit.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into a 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.portal",
            ],
        },
    },
]

# SQLite by default; the same code runs on PostgreSQL (DATABASE_URL=postgres://...).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# No connection pool with qcluster (django-q2 #209); a bounded persistent connection is fine.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (web, cluster workers) share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("timeout", 20)
    # A file, not memory, so tests can share the test database with a subprocess (a worker);
    # one per test process, so parallel test runs never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f"test-db-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, refusing members whose tenant membership was deactivated.
    "portal.backends.MemberBackend",
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:connect_list"
LOGOUT_REDIRECT_URL = "portal:login"
# A password reset link is valid this many seconds (and once); an invitation's set-your-password
# link this many days (invalid once a password is set).
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60)
INVITE_TIMEOUT_DAYS = env.int("INVITE_TIMEOUT_DAYS", default=3)
# Password reset requests: at most this many per e-mail address and per client address in
# PASSWORD_RESET_WINDOW_SECONDS; more get the same answer and no mail.
PASSWORD_RESET_LIMIT = env.int("PASSWORD_RESET_LIMIT", default=5)
PASSWORD_RESET_WINDOW_SECONDS = env.int("PASSWORD_RESET_WINDOW_SECONDS", default=60 * 60)
if PASSWORD_RESET_TIMEOUT < 60 or INVITE_TIMEOUT_DAYS < 1 or PASSWORD_RESET_LIMIT < 1:
    raise ImproperlyConfigured(
        "PASSWORD_RESET_TIMEOUT must be at least 60 seconds, INVITE_TIMEOUT_DAYS and "
        "PASSWORD_RESET_LIMIT at least 1."
    )

# Two-factor login: every staff account needs a verified TOTP device (django-otp) before any
# admin page when this is on; tenant users may enrol themselves. Off by default only with DEBUG.
STAFF_REQUIRE_2FA = _strict_bool("STAFF_REQUIRE_2FA", not DEBUG)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="SenseThunder連携ポータル")
# The admin's TOTP/recovery device pages never show a device's key.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# The audit trail (変更履歴, django-auditlog; what is tracked: integrations/audit.py). Secrets are
# masked whole before they are stored; the client address is the one django-axes uses.
AUDITLOG_USE_FK_STRING_REPRESENTATION = True
AUDITLOG_DISABLE_ON_RAW_SAVE = True

# People in Japan: Japanese first, times in Asia/Tokyo.
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", "日本語"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where `collectstatic` (the Procfile's release) writes and WhiteNoise reads.
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# WhiteNoise serves what `collectstatic` (the Procfile's release) wrote to STATIC_ROOT: hashed
# names cached for ever, gzip beside each file. With DEBUG on, the unhashed originals are used.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Files served at the site's root by WhiteNoise: /favicon.ico, which every browser asks for.
WHITENOISE_ROOT = BASE_DIR / "portal" / "public"

# --- Sessions, cookies and security headers -------------------------------------------------
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = _strict_bool("SECURE_SSL_REDIRECT", not DEBUG)
# A load balancer probes /healthz on the backend over plain HTTP: answer it, don't redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = _strict_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
if _strict_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Error reports (the DEBUG page, error mails) hide every secret, DEBUG on or off.
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.error_reports.SecretsExceptionReporterFilter"

# django-axes: lock an account+address out after repeated failed logins (tenant and admin).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The lock-out page, in Japanese (templates/lockout.html); 429 as before.
AXES_LOCKOUT_TEMPLATE = "lockout.html"
# The lock-outs' admin is ours, in Japanese, with the desk's unlock action
# (integrations/admin/lockouts.py).
AXES_ENABLE_ADMIN = False
AXES_ENABLED = _strict_bool("AXES_ENABLED", True)
# Behind a load balancer every request comes from the balancer's address: django-axes must read
# the client's address from X-Forwarded-For, or one attacker locks an account out for everyone.
# PROXY_COUNT = how many proxies in front of gunicorn append to X-Forwarded-For (an AWS ALB or
# one nginx: 1; a CDN in front of the ALB: 2). Each appends the address it was connected from,
# so the client is the PROXY_COUNT-th entry from the right; anything a client wrote to the left
# of it (a forged header, its own office proxy) is ignored. 0 (default): no header is trusted,
# the socket's address counts (gunicorn reached directly).
PROXY_COUNT = env.int("PROXY_COUNT", default=0)
if PROXY_COUNT < 0:
    raise ImproperlyConfigured("PROXY_COUNT must be 0 or more (the proxies in front of the web).")
if PROXY_COUNT:
    # ipware counts the proxies listed in the header after the client: the nearest proxy is
    # the socket's peer and is not in it. Not strict: extra entries on the left are allowed.
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    AXES_IPWARE_PROXY_COUNT = PROXY_COUNT - 1
    AXES_IPWARE_PROXY_ORDER = "left-most"
    IPWARE_STRICT = False
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)

# Counters of the password reset limit: shared by every web process through Redis when
# REDIS_URL is set, else per process (development, tests).
if env.str("REDIS_URL", default=""):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("REDIS_URL"),
            "KEY_PREFIX": "portal",
        }
    }

# --- E-mail ---------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# Seconds an SMTP connection or command may take: a failure mail is a task of its own on the
# workers' cluster, and a hung mail server must not hold a worker for long.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")
SUPPORT_EMAIL = env.str("SUPPORT_EMAIL", default="support@localhost")
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")

# --- The external APIs ----------------------------------------------------------------------
KOT_API_BASE_URL = env.str("KOT_API_BASE_URL", default="https://api.kingtime.jp/v1.0")
# The address customers register in SenseLink's アプリケーションドメイン and KOT's token IP list.
PORTAL_OUTBOUND_IP = env.str("PORTAL_OUTBOUND_IP", default="203.0.113.10")
# The fixed address and port customers submit to JCV with the push receiving URL (SenseLink's
# event subscription); the port is PORTAL_BASE_URL's.
PORTAL_INBOUND_IP = env.str("PORTAL_INBOUND_IP", default=PORTAL_OUTBOUND_IP)
# A record no push announced for this long marks the tenant's push subscription stopped.
PUSH_STOPPED_GRACE_SECONDS = env.int("PUSH_STOPPED_GRACE_SECONDS", default=120)
# Received push message ids are kept this long (duplicates come within seconds).
PUSH_MESSAGE_DAYS = env.int("PUSH_MESSAGE_DAYS", default=7)
# Real-time polls of one tenant start at least this many seconds apart, however many pushes
# wake them (a flood from someone who knows the receiving URL costs one poll per interval).
REALTIME_MIN_POLL_SPACING_SECONDS = env.float("REALTIME_MIN_POLL_SPACING_SECONDS", default=2.0)
# At most this many push message ids stored per tenant in any 60 seconds; pushes beyond it are
# answered 200 and counted on the tenant's PushReceiver, not stored (a flood from someone who
# knows the URL stays bounded). A terminal recognises about one face a second at most; 600 a
# minute is several busy entrances at full pace.
PUSH_MESSAGES_PER_MINUTE = env.int("PUSH_MESSAGES_PER_MINUTE", default=600)
if PUSH_MESSAGES_PER_MINUTE < 1:
    raise ImproperlyConfigured("PUSH_MESSAGES_PER_MINUTE must be 1 or more.")
# Loopback/private SenseLink URLs are refused unless this is on (sandbox, demo and tests only).
SENSELINK_ALLOW_PRIVATE_HOSTS = _strict_bool("SENSELINK_ALLOW_PRIVATE_HOSTS", False)
# Requests per second per client (0 = no pacing; for KOT a ceiling only) and parallel
# SenseLink writes per sync.
KOT_RATE_LIMIT = env.float("KOT_RATE_LIMIT", default=0.0)
SENSELINK_RATE_LIMIT = env.float("SENSELINK_RATE_LIMIT", default=0.0)
SYNC_CONCURRENCY = env.int("SYNC_CONCURRENCY", default=4)
# KOT: the rate and concurrency are learned per token from KOT's 429/"303" answers
# (connectors/throttle.py), up to KOT_MAX_CONCURRENCY calls in flight; a throttled call is sent
# again at most KOT_THROTTLE_MAX_RESENDS times, waiting at most KOT_THROTTLE_MAX_WAIT_SECONDS.
KOT_MAX_CONCURRENCY = env.int("KOT_MAX_CONCURRENCY", default=8)
KOT_THROTTLE_MAX_RESENDS = env.int("KOT_THROTTLE_MAX_RESENDS", default=10)
KOT_THROTTLE_MAX_WAIT_SECONDS = env.float("KOT_THROTTLE_MAX_WAIT_SECONDS", default=120.0)
if not 1 <= KOT_MAX_CONCURRENCY <= 64 or KOT_THROTTLE_MAX_RESENDS < 0:
    raise ImproperlyConfigured(
        "KOT_MAX_CONCURRENCY must be 1-64 and KOT_THROTTLE_MAX_RESENDS at least 0."
    )
if KOT_THROTTLE_MAX_WAIT_SECONDS < 0:
    raise ImproperlyConfigured("KOT_THROTTLE_MAX_WAIT_SECONDS must be at least 0.")
# SenseLink lists (persons, records of a day) longer than this many pages are an error, never
# a loop; the record query asks this many hours more on both sides of the day (its local time
# is the tenant's SenseLink's) and keeps records by their sign_time.
SENSELINK_MAX_PAGES = env.int("SENSELINK_MAX_PAGES", default=1000)
SENSELINK_RECORD_MARGIN_HOURS = env.int("SENSELINK_RECORD_MARGIN_HOURS", default=3)
if SENSELINK_MAX_PAGES < 1 or not 0 <= SENSELINK_RECORD_MARGIN_HOURS <= 24:
    raise ImproperlyConfigured(
        "SENSELINK_MAX_PAGES must be at least 1 and SENSELINK_RECORD_MARGIN_HOURS 0-24."
    )
# Every outbound call has these timeouts (seconds).
CONNECT_TIMEOUT_SECONDS = env.float("CONNECT_TIMEOUT_SECONDS", default=5.0)
READ_TIMEOUT_SECONDS = env.float("READ_TIMEOUT_SECONDS", default=30.0)
# The whole of one call (connect + headers + body) ends within this many seconds whatever the
# server does (a read timeout is per socket read: a dripping server never trips it). A call and
# its retries stay inside one run lease, so a live worker is never reaped for being slow.
UPSTREAM_CALL_DEADLINE_SECONDS = env.float("UPSTREAM_CALL_DEADLINE_SECONDS", default=60.0)
# A response body (decompressed bytes counted) larger than this is refused.
UPSTREAM_MAX_BODY_BYTES = env.int("UPSTREAM_MAX_BODY_BYTES", default=32 * 1024 * 1024)
if UPSTREAM_MAX_BODY_BYTES < 1024:
    raise ImproperlyConfigured("UPSTREAM_MAX_BODY_BYTES must be at least 1024.")
# Version of the terms a tenant user accepts; raising it asks everybody again.
TERMS_VERSION = env.str("TERMS_VERSION", default="2026-11-01")

# --- Runs and schedules ---------------------------------------------------------------------
# A running run whose heartbeat is older than this is taken as dead (worker killed) and resumed.
SYNC_RUN_LEASE_SECONDS = env.int("SYNC_RUN_LEASE_SECONDS", default=300)
# A run whose worker was lost (lease ran out) is resumed automatically this many times, then
# failed with the usual message and mail. Hand-backs on SIGTERM count as resumptions too.
SYNC_MAX_RESUMES = env.int("SYNC_MAX_RESUMES", default=3)
# On SIGTERM a worker hands its run back within this many seconds (the platform's grace period
# before SIGKILL should be longer): it stops before its next upstream write.
SHUTDOWN_GRACE_SECONDS = env.int("SHUTDOWN_GRACE_SECONDS", default=25)
if SYNC_MAX_RESUMES < 0 or SHUTDOWN_GRACE_SECONDS < 1:
    raise ImproperlyConfigured("SYNC_MAX_RESUMES must be >= 0 and SHUTDOWN_GRACE_SECONDS >= 1.")
if not 0 < UPSTREAM_CALL_DEADLINE_SECONDS <= SYNC_RUN_LEASE_SECONDS / 5:
    raise ImproperlyConfigured(
        "UPSTREAM_CALL_DEADLINE_SECONDS must be above 0 and at most a fifth of "
        "SYNC_RUN_LEASE_SECONDS (a call and its three retries fit in one lease)."
    )
# Transient failures: retries of a whole run, with these delays (minutes).
SYNC_RETRY_DELAYS_MINUTES = env.list("SYNC_RETRY_DELAYS_MINUTES", cast=int, default=[2, 10, 30])
# A slot missed while no cluster ran is still run if found within this many minutes.
SCHEDULE_MISSED_SLOT_GRACE_MINUTES = env.int("SCHEDULE_MISSED_SLOT_GRACE_MINUTES", default=180)

# --- Bounded history (production stream) ----------------------------------------------------
# Finished runs (and their errors) older than this many days are deleted every night and by
# `manage.py prune_history`. 400: payroll audits look a year back.
SYNC_HISTORY_DAYS = env.int("SYNC_HISTORY_DAYS", default=400)
if SYNC_HISTORY_DAYS < 1:
    raise ImproperlyConfigured("SYNC_HISTORY_DAYS must be at least 1 (days of run history kept).")

# --- django-q2 ------------------------------------------------------------------------------
# Web and cluster processes read these same settings. Choices (see PITFALLS.md):
# - timeout 1800 s caps one sync; retry 2100 s > timeout, so the ORM broker never redelivers a
#   task that is still running;
# - max_attempts 1 + ack_failures: the broker never replays a failed task; runs retry themselves
#   where the error can be classified (transient vs configuration);
# - catch_up False: the one-minute dispatcher applies our own missed-slot policy instead;
# - save_limit 2000 per task function: django-q2 keeps the newest 2,000 successful results of
#   each function (syncs, mails, dispatches...); it never prunes failures itself, so the daily
#   prune keeps the newest 2,000 of those (integrations/services/history.py).
# Two clusters share this broker and the signing salt ("name"); integrations/queue.py owns
# their names. The workers' cluster is the default one (`manage.py qcluster`): syncs, mails,
# the daily prune. The dispatcher cluster (`Q_CLUSTER_NAME=portal-dispatcher manage.py
# qcluster`, ALT_CLUSTERS below) only runs the every-minute dispatch, on its own queue, so a
# backlog of syncs never delays it. Production starts both from the Procfile.
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "portal",
    "workers": env.int("Q_WORKERS", default=2),
    "recycle": 50,
    "timeout": 1800,
    "retry": 2100,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 2000,
    "save_limit_per": "func",
    "label": "django-q2",
    "poll": 1,
    "ALT_CLUSTERS": {
        # One worker: a dispatch takes seconds (10,000 due tenants: about 3 s). timeout < retry,
        # so the ORM broker never hands a running dispatch out twice (it is idempotent anyway).
        "portal-dispatcher": {"workers": 1, "recycle": 500, "timeout": 240, "retry": 300},
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
if _strict_bool("Q_SYNC", False):
    Q_CLUSTER["sync"] = True

# Every log record passes through portal.log_redaction: a SenseLink push path is written as
# /hooks/senselink/*** (the token is the secret), whichever logger or handler writes it.
LOGGING_CONFIG = "portal.log_redaction.configure_logging"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
