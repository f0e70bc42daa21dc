"""Celery entry points of the audit log: ids in, one service call (queue ``reports``)."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="audit.tree_heads_issue_all_task", ignore_result=True, time_limit=300,
             soft_time_limit=270)
def tree_heads_issue_all_task() -> int:
    """Beat: enqueue one tree-head task per active workspace; return how many.

    Idempotent: issuing a head for an unchanged log returns the existing head.
    """
    from tenants.tasks import enqueue_for_each_workspace

    return enqueue_for_each_workspace(tree_head_issue_task)


@shared_task(name="audit.tree_head_issue_task", ignore_result=True, time_limit=600,
             soft_time_limit=540)
def tree_head_issue_task() -> int:
    """Sign a tree head over the workspace's log (see services.tree_head_issue).

    Idempotent: an unchanged log returns its latest head; the lock serialises
    concurrent runs. Returns the signed size.
    """
    from audit import services

    return services.tree_head_issue().size


@shared_task(name="audit.export_run_task", acks_late=True, time_limit=1800,
             soft_time_limit=1700)
def export_run_task(job_id: int) -> str:
    """Build one export (see services.export_run); idempotent by claim-by-UPDATE."""
    from audit import services

    return services.export_run(job_id=job_id).status


@shared_task(name="audit.export_archival_renew_all_task", ignore_result=True, time_limit=300,
             soft_time_limit=270)
def export_archival_renew_all_task() -> int:
    """Beat (daily): enqueue one archival-renewal task per active workspace; return how many."""
    from tenants.tasks import enqueue_for_each_workspace

    return enqueue_for_each_workspace(export_archival_renew_task)


@shared_task(name="audit.export_archival_renew_task", ignore_result=True, time_limit=3600,
             soft_time_limit=3300)
def export_archival_renew_task() -> dict[str, int]:
    """Renew the archival timestamps of the workspace's due B-LTA reports (counts by outcome).

    Idempotent: a renewed report is no longer due. Stops starting renewals 50 minutes in,
    well inside the soft limit; what is left is due again the next day.
    """
    import time

    from audit import services

    counts = services.export_renew_archival_due(deadline=time.monotonic() + 3000)
    if counts:
        logger.info("archival renewal", extra={"counts": counts})
    return counts
