"""Writes for workspaces: create, provision, suspend; each its own transaction."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django_tenants.utils import schema_context

from accounts.models import Membership
from accounts.roles import Role
from tenants import dbroles
from tenants.models import Domain, Plan, Tenant, validate_slug

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TenantCreated:
    tenant_id: int
    schema_name: str
    domain: str
    admin_email: str
    admin_password: str


def tenant_request(*, slug: str, name: str, domain: str, plan_code: str | None = None) -> Tenant:
    """Record a new workspace in `provisioning` with its primary domain.

    Runs as any role with rights on `public` (the platform admin does this). The schema
    is created later by `tenant_provision`, under the owner login.
    """
    validate_slug(slug)
    plan = Plan.objects.get(code=plan_code) if plan_code else None
    with transaction.atomic():
        tenant = Tenant.objects.create(schema_name=slug, name=name, plan=plan)
        Domain.objects.create(domain=domain.lower(), tenant=tenant, is_primary=True)
    return tenant


def tenant_provision(*, tenant_id: int) -> Tenant:
    """Create the schema, migrate it, create its role; mark the workspace active.

    Idempotent: an existing schema is migrated forward and the grants re-applied, so a
    provisioning job that crashed half-way is simply run again.
    """
    if not connection.privileged:
        raise RuntimeError("Provisioning needs the owner login (d2r.db.privileged).")
    tenant = Tenant.objects.get(pk=tenant_id)
    try:
        if not tenant.create_schema(check_if_exists=True, sync_schema=True, verbosity=0):
            call_command("migrate_schemas", tenant=True, schema_name=tenant.schema_name,
                         interactive=False, verbosity=0)
        dbroles.tenant_role_sync(tenant.schema_name)
    except Exception as exc:
        Tenant.objects.filter(pk=tenant_id).update(
            status=Tenant.Status.FAILED, status_detail=f"{type(exc).__name__}: {exc}"
        )
        logger.exception("tenant provisioning failed", extra={"tenant": tenant.schema_name})
        raise
    Tenant.objects.filter(pk=tenant_id).update(status=Tenant.Status.ACTIVE, status_detail="")
    tenant.refresh_from_db()
    return tenant


def tenant_admin_create(*, tenant: Tenant, email: str, password: str | None = None) -> str:
    """Create (or reset) the workspace's first administrator; return the password."""
    password = password or secrets.token_urlsafe(12)
    user_model = get_user_model()
    with schema_context(tenant.schema_name), transaction.atomic():
        user, _ = user_model.objects.get_or_create(
            username=email, defaults={"email": email, "is_staff": True, "is_superuser": True}
        )
        user.set_password(password)
        user.save()
        Membership.objects.update_or_create(user=user, defaults={"role": Role.OWNER})
    return password


def tenant_create(
    *, slug: str, name: str, domain: str, admin_email: str, plan_code: str | None = None,
    admin_password: str | None = None,
) -> TenantCreated:
    """Request, provision and give an administrator to a workspace in one go."""
    tenant = tenant_request(slug=slug, name=name, domain=domain, plan_code=plan_code)
    tenant = tenant_provision(tenant_id=tenant.pk)
    password = tenant_admin_create(tenant=tenant, email=admin_email, password=admin_password)
    return TenantCreated(tenant.pk, tenant.schema_name, domain.lower(), admin_email, password)


def tenant_set_status(*, tenant_id: int, status: str, detail: str = "") -> None:
    """Suspend or reactivate a workspace; a suspended one answers every request with 403."""
    if status not in {Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED}:
        raise ValueError(f"Cannot set status {status!r} by hand.")
    Tenant.objects.filter(pk=tenant_id).update(status=status, status_detail=detail)


def plans_ensure_defaults() -> None:
    """Create the standard plans if they are missing (idempotent upsert by code)."""
    defaults = [
        ("starter", "Starter", 5, 200, 600, 300_000),
        ("professional", "Professional", 50, 5_000, 3_000, 300_000),
        ("enterprise", "Enterprise", 1_000, 100_000, 20_000, 300_000),
    ]
    for code, name, devices, storage, rate, price in defaults:
        Plan.objects.update_or_create(
            code=code,
            defaults={"name": name, "max_devices": devices, "max_storage_gb": storage,
                      "api_requests_per_minute": rate, "price_inr_per_device_year": price},
        )
