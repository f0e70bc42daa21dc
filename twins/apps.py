from __future__ import annotations

from django.apps import AppConfig


class TwinsConfig(AppConfig):
    name = "twins"
