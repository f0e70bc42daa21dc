"""`make test`: the same real services, faster password hashing."""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "test-only-not-a-secret")

from d2r.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = False
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}

# Tests use their own Redis database, so a running `make run` keeps its queues.
if REDIS_URL.rstrip("/").rsplit("/", 1)[-1].isdigit():  # noqa: F405
    REDIS_URL = REDIS_URL.rstrip("/").rsplit("/", 1)[0] + "/1"  # noqa: F405
CACHES["default"]["LOCATION"] = REDIS_URL  # noqa: F405
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [REDIS_URL]  # noqa: F405
CELERY_BROKER_URL = CELERY_RESULT_BACKEND = REDIS_URL
ALLOWED_HOSTS = [".localhost", "localhost", "testserver", "127.0.0.1"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
JWT_KEYS_FILE = str(ROOT / ".d2r" / "test-jwt-keys.json")  # noqa: F405
JWT_KEYS_AUTOCREATE = True
# Serve static files straight from the apps (no collectstatic before a test run).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
