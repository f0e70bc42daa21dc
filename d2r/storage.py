"""Object storage whose every key starts with the current workspace.

A file saved while serving workspace `acme` is stored under `tenants/acme/...`; a
name outside that prefix (another tenant's key, `..`) is refused, so a tenant can
neither write nor read another tenant's objects through this storage.
"""

from __future__ import annotations

import posixpath

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django_tenants.utils import get_public_schema_name
from storages.backends.s3 import S3Storage

PREFIX = "tenants"


def tenant_prefix() -> str:
    schema = connection.schema_name
    if not schema or schema == get_public_schema_name():
        return "platform"
    return f"{PREFIX}/{schema}"


def tenant_key(name: str) -> str:
    """The storage key for `name` in the current workspace (no escape by `..`)."""
    clean = posixpath.normpath(name.replace("\\", "/") or ".").lstrip("/")
    if clean.startswith(".."):
        raise SuspiciousFileOperation(f"Invalid object name {name!r}.")
    return tenant_prefix() if clean == "." else f"{tenant_prefix()}/{clean}"


class TenantKeyMixin:
    """Prefix every name with the workspace; storage never sees an unprefixed key."""

    def _tenant_name(self, name: str) -> str:
        prefix = tenant_prefix() + "/"
        return name if name.startswith(prefix) else tenant_key(name)

    def _save(self, name: str, content):  # type: ignore[no-untyped-def]
        return super()._save(self._tenant_name(name), content)  # type: ignore[misc]

    def _open(self, name: str, mode: str = "rb"):  # type: ignore[no-untyped-def]
        return super()._open(self._tenant_name(name), mode)  # type: ignore[misc]

    def delete(self, name: str) -> None:
        super().delete(self._tenant_name(name))  # type: ignore[misc]

    def exists(self, name: str) -> bool:
        return super().exists(self._tenant_name(name))  # type: ignore[misc,no-any-return]

    def size(self, name: str) -> int:
        return super().size(self._tenant_name(name))  # type: ignore[misc,no-any-return]

    def url(self, name: str, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
        return super().url(self._tenant_name(name), *args, **kwargs)  # type: ignore[misc,no-any-return]

    def listdir(self, path: str):  # type: ignore[no-untyped-def]
        return super().listdir(self._tenant_name(path or "."))  # type: ignore[misc]

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return super().get_available_name(  # type: ignore[misc,no-any-return]
            self._tenant_name(name), max_length
        )


class TenantS3Storage(TenantKeyMixin, S3Storage):
    """S3 (SeaweedFS in development) with tenant-prefixed keys."""


class TenantFileSystemStorage(TenantKeyMixin, FileSystemStorage):
    """Local files with tenant-prefixed paths: the fallback with no object store."""
