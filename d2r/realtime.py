"""WebSockets: tenant resolution, authentication, tenant-scoped groups.

Channels does not run Django's middleware, and `database_sync_to_async` runs on a
thread whose connection carries no tenant, so the tenant is resolved here from the
host and every database access sets it explicitly. Group names always carry the
tenant's schema: integer ids collide across schemas.
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.urls import path

GROUP_NAME_RE = re.compile(r"^[a-z0-9_.-]{1,90}$")


class Event(TypedDict):
    """One message to a tenant's subscribers, e.g. a scan's progress."""

    kind: str
    data: dict[str, Any]


def tenant_group(schema_name: str, topic: str) -> str:
    """The channel-layer group for `topic` inside one workspace only."""
    name = f"t.{schema_name}.{topic}"
    if not GROUP_NAME_RE.match(name) or not schema_name or "." in schema_name:
        raise ValueError(f"Invalid group {name!r}.")
    return name


def publish(schema_name: str, topic: str, event: Event) -> None:
    """Send an event to the workspace's subscribers of `topic` (call it on commit)."""
    layer = get_channel_layer()
    async_to_sync(layer.group_send)(
        tenant_group(schema_name, topic), {"type": "tenant.event", "event": event}
    )


@database_sync_to_async
def _resolve(host: str, session_key: str | None) -> tuple[Any, Any]:
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
        load_backend,
    )
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection
    from django.utils.crypto import constant_time_compare
    from django_tenants.utils import tenant_context

    from tenants.middleware import SESSION_TENANT_KEY
    from tenants.models import Tenant

    connection.set_schema_to_public()
    tenant = (
        Tenant.objects.filter(domains__domain=host, status=Tenant.Status.ACTIVE).first()
    )
    if tenant is None or not session_key:
        return tenant, None
    with tenant_context(tenant):
        session = SessionStore(session_key)
        user_id = session.get(SESSION_KEY)
        if user_id is None or session.get(SESSION_TENANT_KEY, tenant.schema_name) != (
            tenant.schema_name
        ):
            return tenant, None
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        if user is None or BACKEND_SESSION_KEY not in session:
            return tenant, None
        load_backend(session[BACKEND_SESSION_KEY])
        if not constant_time_compare(session.get(HASH_SESSION_KEY, ""),
                                     user.get_session_auth_hash()):
            return tenant, None
    return tenant, user


class TenantWebSocketMiddleware:
    """Puts `tenant` and `user` (or None) into the scope of every WebSocket."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        from django.conf import settings

        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1").split(":")[0].lower()
        cookies = headers.get(b"cookie", b"").decode("latin-1")
        session_key = None
        for part in cookies.split(";"):
            name, _, value = part.strip().partition("=")
            if name == settings.SESSION_COOKIE_NAME:
                session_key = value
        tenant, user = await _resolve(host, session_key)
        scope = {**scope, "tenant": tenant, "user": user}
        return await self.inner(scope, receive, send)


class TenantEventsConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/v1/events/`: a signed-in user receives their workspace's events only.

    Close codes: 4401 not authenticated, 4404 no such workspace.
    """

    groups: list[str] = []

    async def connect(self) -> None:
        tenant, user = self.scope.get("tenant"), self.scope.get("user")
        if tenant is None:
            await self.close(code=4404)
            return
        if user is None:
            await self.close(code=4401)
            return
        self.group = tenant_group(tenant.schema_name, "events")
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"kind": "hello", "data": {"workspace": tenant.schema_name}})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def tenant_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])


websocket_urlpatterns = [path("ws/v1/events/", TenantEventsConsumer.as_asgi())]
