"""Celery entry points of the quality app: ids in, one service call each."""

from __future__ import annotations

from celery import shared_task

from quality import services


@shared_task(name="quality.qc_run_execute_task", acks_late=True,
             ignore_result=True, time_limit=60 * 60, soft_time_limit=55 * 60)
def qc_run_execute_task(run_id: str) -> str:
    """Judge one QC run: align, deviate, evaluate, artifacts, result and receipt (sent to
    queue `processing` by `quality.services._enqueue`).

    Idempotent: `qc_run_execute` claims the run by a conditional UPDATE with a lease, so
    a redelivered task for a run that is running or finished does nothing; a worker that
    died leaves a lease that expires and `qc_runs_requeue_stale_task` sends it again (at
    most MAX_RUN_ATTEMPTS claims). The result is one-to-one with the run.
    """
    return services.qc_run_execute(run_id=run_id)


@shared_task(name="quality.qc_runs_requeue_stale_task", ignore_result=True, time_limit=300,
             soft_time_limit=270)
def qc_runs_requeue_stale_task() -> int:
    """One workspace's QC runs left queued or with an expired lease, sent again."""
    return services.qc_runs_requeue_stale()


@shared_task(name="quality.qc_runs_sweep_task", ignore_result=True)
def qc_runs_sweep_task() -> int:
    """Beat (every minute): a stale-run requeue task per workspace, carrying its tenant."""
    from tenants.tasks import enqueue_for_each_workspace

    return enqueue_for_each_workspace(qc_runs_requeue_stale_task)
