"""The Celery app: tenant-aware tasks (tenant-schemas-celery) that also carry the
request id, and start every task from a clean connection state."""

from __future__ import annotations

import os
from typing import Any

from celery import signals
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "d2r.settings.local")

app = CeleryApp("d2r")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

REQUEST_ID_HEADER = "d2r_request_id"


@signals.before_task_publish.connect
def _add_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    from d2r.logging import current_request_id

    if headers is not None and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = current_request_id()


@signals.task_prerun.connect
def _enter_task(task: Any = None, **_: Any) -> None:
    from d2r.logging import set_request_id

    request_id = getattr(task.request, REQUEST_ID_HEADER, None) if task else None
    if request_id is None and task is not None:
        request_id = (task.request.headers or {}).get(REQUEST_ID_HEADER)
    set_request_id(request_id)


@signals.task_postrun.connect
def _leave_task(**_: Any) -> None:
    from django.db import connection

    from d2r.logging import set_request_id

    # A pooled connection must not carry this task's schema into the next task.
    connection.set_schema_to_public()
    set_request_id(None)
