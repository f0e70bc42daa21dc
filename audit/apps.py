from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"

    def ready(self) -> None:
        from audit import tracking

        tracking.connect()  # configuration changes and deletions become entries
