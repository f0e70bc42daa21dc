"""Base API views that always scope to the request's workspace and fail closed."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from rest_framework import permissions, serializers, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request


class TenantScopedMixin:
    """Refuses to run unless the live connection is in the request's own workspace.

    The check runs in `initial()`, before any handler or `get_queryset`, so a subclass
    cannot skip it by overriding those. The rows themselves are confined by
    PostgreSQL (schema and role), not by a filter a subclass could forget.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        tenant = getattr(request._request, "tenant", None)
        if tenant is None or tenant.is_public or connection.schema_name != tenant.schema_name:
            raise NotFound()
        super().initial(request, *args, **kwargs)  # type: ignore[misc]


class DenyAll(permissions.BasePermission):
    """The default of resource views: nobody, until a view says which capability it needs."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return False


class TenantModelViewSet(TenantScopedMixin, viewsets.ModelViewSet):  # type: ignore[type-arg]
    """A CRUD resource of the request's workspace.

    Subclasses set `permission_classes = [needs(read_capability, write_capability)]`
    (accounts.permissions); the default refuses everyone.
    """

    permission_classes = [DenyAll]

    # Each write is one transaction, so the row and its audit entry (audit.tracking)
    # commit together or not at all. (A comment: the docstring is the resources' OpenAPI
    # description.)

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        with transaction.atomic():
            super().perform_create(serializer)

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        with transaction.atomic():
            super().perform_update(serializer)

    def perform_destroy(self, instance: Any) -> None:
        with transaction.atomic():
            super().perform_destroy(instance)
