"""Bind a session to the workspace it logged in to (see SessionTenantBindingMiddleware)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.db import connection
from django.dispatch import receiver


@receiver(user_logged_in)
def _bind_session(sender: Any, request: Any, user: Any, **_: Any) -> None:
    from tenants.middleware import SESSION_TENANT_KEY

    if request is not None and hasattr(request, "session"):
        request.session[SESSION_TENANT_KEY] = connection.schema_name
