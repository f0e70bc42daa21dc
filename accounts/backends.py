"""allauth's authentication backend, inside workspaces only (the platform has no allauth)."""

from __future__ import annotations

from typing import Any

from allauth.account.auth_backends import AuthenticationBackend
from django.db import connection
from django_tenants.utils import get_public_schema_name


class WorkspaceAuthenticationBackend(AuthenticationBackend):
    def authenticate(self, request: Any, **credentials: Any) -> Any:
        if connection.schema_name == get_public_schema_name():
            return None
        return super().authenticate(request, **credentials)
