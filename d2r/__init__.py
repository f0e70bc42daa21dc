"""D2R Cloud: project package (settings, URLs, ASGI, Celery app, middleware)."""

from d2r.celery import app as celery_app

__all__ = ["celery_app"]
