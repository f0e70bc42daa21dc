from __future__ import annotations

from django.apps import AppConfig


class QualityConfig(AppConfig):
    """Tolerance contracts, QC runs and their results, reviews (issue 5)."""

    name = "quality"

    def ready(self) -> None:
        from quality import receivers  # noqa: F401  (connects them)
