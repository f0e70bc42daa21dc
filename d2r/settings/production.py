"""Production: every secret from the environment, HTTPS only."""

from __future__ import annotations

from d2r.env import env_bool, env_int, env_secret
from d2r.settings.base import *  # noqa: F403

DEBUG = False
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
AUDIT_SIGNING_KEY = env_secret("AUDIT_SIGNING_KEY")  # required: no generated default
