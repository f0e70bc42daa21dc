"""Settings shared by every environment; values come from the environment (d2r.env)."""

from __future__ import annotations

from datetime import timedelta

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from d2r.env import ROOT, env_bool, env_int, env_list, env_secret, env_str

BASE_DIR = ROOT
SECRET_KEY = env_secret("SECRET_KEY")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ".localhost,localhost,127.0.0.1")
# The domain under which tenants get `<slug>.<BASE_DOMAIN>`.
BASE_DOMAIN = env_str("BASE_DOMAIN", "localhost")
PUBLIC_URL = env_str("PUBLIC_URL", "http://localhost:8000")

# --- Applications ---------------------------------------------------------------------
SHARED_APPS = [
    # `tenants` first: its create_tenant command replaces django-tenants' own.
    "tenants",
    "django_tenants",
    "billing",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_prometheus",
    "corsheaders",
    "csp",
]
TENANT_APPS = [
    "pgtrigger",
    "pghistory",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "accounts",
    "devices",
    "inspections",
    "twins",
    "audit",
    "analytics",
    "quality",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "d2r.urls_public"
ROOT_URLCONF = "d2r.urls_tenant"
TENANT_LIMIT_SET_CALLS = False  # never trust a cached search_path (ADR 0001)
TENANT_MULTIPROCESSING_MAX_PROCESSES = env_int("TENANT_MIGRATE_PROCESSES", 2)

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "d2r.middleware.RequestIdMiddleware",
    "d2r.middleware.ProblemDetailsMiddleware",
    "accounts.throttling.RateLimitHeadersMiddleware",
    "tenants.middleware.TenantMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.sso.middleware.SsoRequiredMiddleware",
    "accounts.middleware.MfaRequiredMiddleware",
    "audit.middleware.HistoryContextMiddleware",
    "tenants.middleware.SessionTenantBindingMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [ROOT / "templates"],
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

ASGI_APPLICATION = "d2r.asgi.application"
WSGI_APPLICATION = "d2r.wsgi.application"

# --- Database -------------------------------------------------------------------------
_database = dj_database_url.parse(env_secret("DATABASE_URL"), conn_max_age=60)
_database.update(
    ENGINE="d2r.db",
    # Processes log in as the authenticator role; DATABASE_URL's user owns the schemas
    # and is used only by migrations and provisioning (d2r.db.privileged).
    # Empty: `<database name>_app`, so the test database gets its own roles too.
    APP_USER=env_str("DATABASE_APP_USER", ""),
    APP_PASSWORD=env_secret("DATABASE_APP_PASSWORD", ""),
    PRIVILEGED=env_bool("D2R_DB_PRIVILEGED", False),
    CONN_HEALTH_CHECKS=True,
)
DATABASES = {"default": _database}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker ---------------------------------------
REDIS_URL = env_str("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Every key is prefixed with the current schema (django-tenants): a tenant's
        # request can never read another tenant's cache entry.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "d2r:channels"},
    }
}

# --- Object storage -------------------------------------------------------------------
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL", "")
if S3_ENDPOINT_URL:
    _storage_options = {
        "endpoint_url": S3_ENDPOINT_URL,
        "access_key": env_secret("S3_ACCESS_KEY_ID"),
        "secret_key": env_secret("S3_SECRET_ACCESS_KEY"),
        "bucket_name": env_str("S3_BUCKET", "d2r"),
        "region_name": env_str("S3_REGION", "us-east-1"),
        "addressing_style": "path",
        "file_overwrite": False,
        "default_acl": None,
        "querystring_auth": True,
    }
    DEFAULT_STORAGE = {"BACKEND": "d2r.storage.TenantS3Storage", "OPTIONS": _storage_options}
else:  # last fallback, for a machine without any object store
    DEFAULT_STORAGE = {
        "BACKEND": "d2r.storage.TenantFileSystemStorage",
        "OPTIONS": {"location": str(ROOT / ".d2r" / "media")},
    }
STORAGES = {
    "default": DEFAULT_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
STATIC_URL = "/static/"
STATIC_ROOT = ROOT / ".d2r" / "static"
STATICFILES_DIRS = [ROOT / "static"]

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "tenants.*": {"queue": "default"},
    "inspections.*": {"queue": "processing"},
    "analytics.*": {"queue": "analytics"},
    "audit.*": {"queue": "reports"},
    "quality.*": {"queue": "processing"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "tenants-heartbeat": {"task": "tenants.platform_heartbeat_task", "schedule": 60.0},
    "audit-tree-heads": {"task": "audit.tree_heads_issue_all_task",
                         "schedule": float(env_int("AUDIT_TREE_HEAD_SECONDS", 3600))},
}

# --- Auth and sessions ----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Host-only cookies: a session of acme.<domain> is never sent to globex.<domain>.
SESSION_COOKIE_DOMAIN = None
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(timedelta(hours=12).total_seconds())
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "accounts.backends.WorkspaceAuthenticationBackend",
    "accounts.sso.backends.WorkspaceSaml2Backend",  # SSO (accounts.sso), loads SAML lazily
    "accounts.sso.oidc.WorkspaceOidcBackend",
]
# Local accounts (django-allauth): email login, password reset, TOTP MFA. People are
# invited by their workspace's admins; there is no public sign-up.
ACCOUNT_ADAPTER = "accounts.adapters.WorkspaceAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_RATE_LIMITS = {
    "login_failed": env_str("LOGIN_FAILED_RATE", "10/m/ip,5/5m/key"),
    "reset_password": "20/m/ip,5/m/key",
}
LOGIN_REDIRECT_URL = "/admin/"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "D2R Cloud"
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "D2R Cloud <no-reply@d2r.cloud>")
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content Security Policy for the admin and pages: scripts only from our origin
# (Swagger UI is served as split files for that reason), no framing, no plugins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],  # the admin sets inline styles
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# CORS only for origins an operator lists (none by default); API only.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", "")
CORS_URLS_REGEX = r"^/api/.*$"
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.CredentialAuthentication",
        "accounts.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "d2r.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "d2r.api.problems.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.PlanRateThrottle"],
    "NUM_PROXIES": env_int("TRUSTED_PROXY_COUNT", 0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "D2R Cloud API",
    "DESCRIPTION": "Inspections, digital twins, audit and fleet for LiDAR edge devices.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {"MachineDecisionEnum": "quality.models.Decision"},
}

# --- Logging: one JSON object per line, with the request id ---------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "d2r.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(tenant)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json",
                    "filters": ["request_id"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"level": "WARNING"},
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Hosts that serve the platform (public schema): operators' admin, signup, API docs.
PLATFORM_HOSTS = env_list("PLATFORM_HOSTS", "localhost,127.0.0.1")
# Tenant migrations skip schemas that are already up to date (tenants.migration).
GET_EXECUTOR_FUNCTION = "tenants.migration.get_executor"

# --- Identity (ADR 0002) ----------------------------------------------------------------
JWT_KEYS_FILE = env_str("JWT_KEYS_FILE", str(ROOT / ".d2r" / "jwt-keys.json"))
JWT_KEYS_AUTOCREATE = env_bool("JWT_KEYS_AUTOCREATE", DEBUG)
JWT_ISSUER = env_str("JWT_ISSUER", "https://d2r.cloud")
JWT_AUDIENCE = env_str("JWT_AUDIENCE", "d2r-api")
JWT_ACCESS_SECONDS = env_int("JWT_ACCESS_SECONDS", 900)
JWT_REFRESH_DAYS = env_int("JWT_REFRESH_DAYS", 30)
JWT_LEEWAY_SECONDS = 30  # clock skew tolerated on exp/nbf/iat
DEVICE_JWT_MAX_LIFETIME_SECONDS = 300
# Header in which the mTLS-terminating proxy forwards a device's verified client
# certificate (URL-escaped PEM, e.g. nginx $ssl_client_escaped_cert). Empty: not trusted.
DEVICE_CERT_HEADER = env_str("DEVICE_CERT_HEADER", "")
MAX_TOKEN_BYTES = 4096  # larger bearer tokens are refused before parsing
API_DEFAULT_RATE_PER_MINUTE = env_int("API_DEFAULT_RATE_PER_MINUTE", 1200)
API_ANON_RATE_PER_MINUTE = env_int("API_ANON_RATE_PER_MINUTE", 120)
AUTH_RATE_PER_MINUTE = env_int("AUTH_RATE_PER_MINUTE", 20)
RATE_LIMIT_WINDOW_SECONDS = 60
# Callables that map an API credential to its workspace (tenants.middleware).
TENANT_CREDENTIAL_RESOLVERS = ["accounts.credentials.resolve_request_credential"]

# --- Audit log (ADR 0004) -------------------------------------------------------------
# Root secret from which each workspace's log signing keys are derived (HKDF). Empty
# outside production: a random one is generated once into .d2r/audit_signing_key.
AUDIT_SIGNING_KEY = env_secret("AUDIT_SIGNING_KEY", "")
# Former root secrets, comma-separated: checkpoints are co-signed during a rotation.
AUDIT_SIGNING_KEYS_PREVIOUS = env_list("AUDIT_SIGNING_KEYS_PREVIOUS", "")
AUDIT_ORIGIN_PREFIX = env_str("AUDIT_ORIGIN_PREFIX", f"{BASE_DOMAIN}/audit")
# PAdES level of signed PDF reports (ADR 0004): B-B (signature only), B-T (+ RFC 3161
# signature timestamp), B-LT (+ DSS: certificates and CRLs), B-LTA (+ document
# timestamp). Default: B-LTA when a timestamp authority and its roots are configured,
# B-T with a timestamp authority only, else B-B.
# RFC 3161 timestamp authority (HTTP(S) URL) for B-T and above.
AUDIT_TSA_URL = env_str("AUDIT_TSA_URL", "")
# PEM file with the TSA's root certificate(s): the TSA's chain is validated against it
# when signing B-LT/B-LTA, and its revocation data fetched from the URLs in that chain.
AUDIT_TSA_ROOTS_FILE = env_str("AUDIT_TSA_ROOTS_FILE", "")
AUDIT_TSA_TIMEOUT_SECONDS = env_int("AUDIT_TSA_TIMEOUT_SECONDS", 10)
AUDIT_PDF_PADES_LEVEL = env_str(
    "AUDIT_PDF_PADES_LEVEL",
    ("B-LTA" if AUDIT_TSA_ROOTS_FILE else "B-T") if AUDIT_TSA_URL else "B-B",
)
# B-LTA reports get a new archival timestamp (DSS update + document timestamp) once the
# TSA certificate of their latest document timestamp expires within this many days
# (daily beat task audit.export_archival_renew_all_task; ADR 0004).
AUDIT_PDF_RENEW_BEFORE_DAYS = env_int("AUDIT_PDF_RENEW_BEFORE_DAYS", 365)
if AUDIT_PDF_PADES_LEVEL not in {"B-B", "B-T", "B-LT", "B-LTA"}:
    raise ImproperlyConfigured("AUDIT_PDF_PADES_LEVEL must be B-B, B-T, B-LT or B-LTA.")
if AUDIT_PDF_PADES_LEVEL != "B-B" and not AUDIT_TSA_URL:
    raise ImproperlyConfigured(f"PAdES {AUDIT_PDF_PADES_LEVEL} needs AUDIT_TSA_URL.")
if AUDIT_PDF_PADES_LEVEL in {"B-LT", "B-LTA"} and not AUDIT_TSA_ROOTS_FILE:
    raise ImproperlyConfigured(
        f"PAdES {AUDIT_PDF_PADES_LEVEL} needs AUDIT_TSA_ROOTS_FILE "
        "(the timestamp authority's root certificates, PEM)."
    )

# --- Scan ingestion (issue 4; inspections.ingest) ---------------------------------------
# Bytes per S3 multipart part: the web process holds at most one part per upload.
INGEST_PART_SIZE = env_int("INGEST_PART_SIZE", 5 * 1024 * 1024)
INGEST_MAX_UPLOAD_BYTES = env_int("INGEST_MAX_UPLOAD_BYTES", 8 * 1024**3)
INGEST_UPLOAD_TTL_SECONDS = env_int("INGEST_UPLOAD_TTL_SECONDS", 7 * 24 * 3600)
# Ed25519 seed (base64, 32 bytes) signing sync acknowledgements; empty: derived from
# SECRET_KEY (set it explicitly in production so rotating SECRET_KEY keeps the key).
INGEST_ACK_SIGNING_KEY = env_secret("INGEST_ACK_SIGNING_KEY", "")
INGEST_MAX_POINTS = env_int("INGEST_MAX_POINTS", 2_000_000_000)
INGEST_MAX_DECOMPRESSED_BYTES = env_int("INGEST_MAX_DECOMPRESSED_BYTES", 64 * 1024**3)
INGEST_MAX_DECOMPRESSION_RATIO = env_int("INGEST_MAX_DECOMPRESSION_RATIO", 100)
INGEST_PROCESSING_LEASE_SECONDS = env_int("INGEST_PROCESSING_LEASE_SECONDS", 35 * 60)
INGEST_OUTBOX_STALE_SECONDS = env_int("INGEST_OUTBOX_STALE_SECONDS", 120)
CELERY_BEAT_SCHEDULE["audit-archival-renew"] = {
    "task": "audit.export_archival_renew_all_task", "schedule": 24 * 3600.0}
CELERY_BEAT_SCHEDULE["inspections-outbox-sweep"] = {
    "task": "inspections.outbox_sweep_task", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["inspections-uploads-expire"] = {
    "task": "inspections.uploads_expire_task", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["quality-runs-sweep"] = {
    "task": "quality.qc_runs_sweep_task", "schedule": 60.0}

# --- Enterprise SSO (issue 3; accounts.sso, ADR 0002) ---------------------------------
# djangosaml2 and mozilla-django-oidc are configured per workspace from its
# SsoConfiguration row on every request; these are only the global knobs.
SAML_CONFIG_LOADER = "accounts.sso.saml.sp_config_for_request"
SAML_DEFAULT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
SAML_XMLSEC_BINARY = env_str("SAML_XMLSEC_BINARY", "")  # empty: found on PATH
SSO_SECRET_KEY = env_secret("SSO_SECRET_KEY", "")  # empty: derived from SECRET_KEY
SSO_SECRET_KEYS_PREVIOUS = env_list("SSO_SECRET_KEYS_PREVIOUS", "")
# IdP metadata URLs and OIDC discovery must be HTTPS except in development.
SSO_ALLOW_HTTP_PROVIDERS = env_bool("SSO_ALLOW_HTTP_PROVIDERS", DEBUG)
SSO_HTTP_TIMEOUT = env_int("SSO_HTTP_TIMEOUT", 5)
SSO_CLOCK_SKEW_SECONDS = 60
