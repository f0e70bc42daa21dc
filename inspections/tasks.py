"""Celery entry points of the inspections app: ids in, one service call each."""

from __future__ import annotations

import uuid

from celery import shared_task

from inspections import services
from tenants.tasks import enqueue_for_each_workspace


@shared_task(name="inspections.scan_process_task", acks_late=True, ignore_result=True,
             time_limit=30 * 60, soft_time_limit=28 * 60)
def scan_process_task(scan_id: str) -> str:
    """Validate a received scan and write its canonical form (queue `processing`).

    Idempotent: `scan_process` claims the scan by a conditional UPDATE with a lease, so a
    redelivered or re-sent task for a scan that is processing or finished does nothing;
    a task whose worker died leaves a lease that expires, and the outbox sweep re-sends.
    """
    return services.scan_process(scan_id=uuid.UUID(scan_id))


@shared_task(name="inspections.outbox_redispatch_task", ignore_result=True, time_limit=300,
             soft_time_limit=270)
def outbox_redispatch_task() -> int:
    """One workspace's stale outbox rows, sent again (idempotent: see scan_process_task)."""
    return services.outbox_redispatch_stale()


@shared_task(name="inspections.uploads_expire_task", ignore_result=True, time_limit=600,
             soft_time_limit=540)
def uploads_expire_task() -> int:
    """Beat: fan out upload expiry to every workspace (each run is idempotent)."""
    return enqueue_for_each_workspace(uploads_expire_in_workspace_task)


@shared_task(name="inspections.uploads_expire_in_workspace_task", ignore_result=True,
             time_limit=600, soft_time_limit=540)
def uploads_expire_in_workspace_task() -> int:
    """Expire one workspace's abandoned uploads (conditional UPDATE per row)."""
    return services.uploads_expire()


@shared_task(name="inspections.outbox_sweep_task", ignore_result=True, time_limit=300,
             soft_time_limit=270)
def outbox_sweep_task() -> int:
    """Beat (every minute): a redispatch task per workspace, carrying its tenant."""
    return enqueue_for_each_workspace(outbox_redispatch_task)
