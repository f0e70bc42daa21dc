"""`make run` on a developer machine: embedded services, DEBUG on."""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "local-development-only-not-a-secret")
os.environ.setdefault("DEBUG", "1")

from d2r.settings.base import *  # noqa: F403

WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
