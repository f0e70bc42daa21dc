"""Every task can be enqueued: Celery refuses to send a task whose soft time limit
(the global CELERY_TASK_SOFT_TIME_LIMIT when the task sets none) exceeds its hard one."""

from __future__ import annotations


def test_no_task_has_a_soft_time_limit_above_its_hard_limit() -> None:
    from d2r.celery import app

    app.loader.import_default_modules()
    refused = sorted(
        name
        for name, task in app.tasks.items()
        if not name.startswith("celery.")
        and (soft := task.soft_time_limit or app.conf.task_soft_time_limit)
        and (hard := task.time_limit or app.conf.task_time_limit)
        and soft > hard
    )
    assert refused == []
