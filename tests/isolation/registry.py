"""Every model, classified by how its rows are kept apart (the isolation suite reads this).

Adding a model without adding it here fails `test_every_model_is_covered`.

- TENANT: table in every workspace schema; a factory makes a row in the current one.
- SHARED_RLS: table in `public` carrying tenant rows, behind FORCE ROW LEVEL SECURITY.
- PLATFORM: table in `public` only for the platform; tenant roles have no access.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone


@dataclass(frozen=True)
class TenantCase:
    factory: Callable[[], Any]
    api_path: str | None = None  # list endpoint, when the model has one
    patch: dict[str, Any] | None = None


def _site() -> Any:
    from inspections.models import Site

    return Site.objects.create(name=f"Site {timezone.now().timestamp()}")


def _asset() -> Any:
    from inspections.models import Asset

    return Asset.objects.create(site=_site(), tag="A-1", name="Pump")


def _user() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username=f"u{timezone.now().timestamp()}")


def _session() -> Any:
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store["k"] = "v"
    store.save()
    from django.contrib.sessions.models import Session

    return Session.objects.get(session_key=store.session_key)


def _log_entry() -> Any:
    from django.contrib.admin.models import ADDITION, LogEntry

    user = _user()
    return LogEntry.objects.create(user=user, action_flag=ADDITION, object_repr="x",
                                   change_message="")


def _membership() -> Any:
    from accounts.models import Membership

    return Membership.objects.create(user=_user(), role="viewer")


TENANT: dict[str, TenantCase] = {
    "accounts.Membership": TenantCase(_membership),
    "inspections.Site": TenantCase(_site, "/api/v1/sites", {"location": "moved"}),
    "inspections.Asset": TenantCase(_asset, "/api/v1/assets", {"name": "renamed"}),
    "auth.User": TenantCase(_user),
    "auth.Group": TenantCase(lambda: Group.objects.create(name=f"g{timezone.now().timestamp()}")),
    "auth.Permission": TenantCase(lambda: Permission.objects.create(
        name="x", codename=f"x{timezone.now().timestamp()}",
        content_type=ContentType.objects.get_for_model(Group))),
    "contenttypes.ContentType": TenantCase(
        lambda: ContentType.objects.create(app_label="x", model=f"m{timezone.now().timestamp()}")
    ),
    "sessions.Session": TenantCase(_session),
    "admin.LogEntry": TenantCase(_log_entry),
}

SHARED_RLS = {"billing.UsageRecord"}

PLATFORM = {"tenants.Plan", "tenants.Tenant", "tenants.Domain"}
