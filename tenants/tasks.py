"""Background jobs for workspaces."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from d2r.db.privileged import privileged
from tenants import services


@shared_task(name="tenants.tenant_provision_task", bind=True, acks_late=True,
             autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5,
             time_limit=600, soft_time_limit=540)
def tenant_provision_task(self, tenant_id: int) -> str:  # type: ignore[no-untyped-def]
    """Create and migrate a workspace's schema under the owner login.

    Idempotent: `tenant_provision` migrates an existing schema forward and re-applies
    grants, so a redelivered task converges on the same state.
    """
    with privileged():
        tenant = services.tenant_provision(tenant_id=tenant_id)
    return tenant.status


@shared_task(name="tenants.platform_heartbeat_task", ignore_result=True)
def platform_heartbeat_task() -> str:
    """Beat's liveness mark (scheduled every minute); monitoring alerts when it stops."""
    from django.core.cache import cache
    from django.utils import timezone

    now = timezone.now().isoformat()
    cache.set("beat:last", now, timeout=3600)
    return now


@shared_task(name="tenants.current_schema_task")
def current_schema_task() -> dict[str, str]:
    """Report the schema, role and search_path the task really runs under (diagnostics)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_setting('search_path')")
        user, search_path = cursor.fetchone()
    return {"schema": connection.schema_name, "role": user, "search_path": search_path}


def enqueue_for_each_workspace(task: Any) -> int:
    """Enqueue `task` once per active workspace, each carrying its tenant; return how many.

    Beat runs in the public schema; per-workspace sweeps fan out through this.
    """
    from django_tenants.utils import schema_context

    from tenants.models import Tenant

    schemas = list(Tenant.objects.filter(status=Tenant.Status.ACTIVE)
                   .exclude(schema_name="public").values_list("schema_name", flat=True))
    for schema in schemas:
        with schema_context(schema):  # tenant-schemas-celery puts the schema in the headers
            task.delay()
    return len(schemas)
