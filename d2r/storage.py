"""Object storage whose every key starts with the current workspace.

A file saved while serving workspace `acme` is stored under `tenants/acme/...`; a
name outside that prefix (another tenant's key, `..`) is refused, so a tenant can
neither write nor read another tenant's objects through this storage.
"""

from __future__ import annotations

import posixpath
import threading
from typing import Any

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


# Guards the lazy creation of the shared boto3 session and client (creating clients from
# one session concurrently is not thread-safe in botocore).
_BOTO_LOCK = threading.RLock()


class TenantS3Storage(TenantKeyMixin, S3Storage):
    """S3 (SeaweedFS in development) with tenant-prefixed keys.

    django-storages builds a boto3 session and resource per thread, and under ASGI every
    request runs in a thread of its own: each request touching storage parsed the S3
    service model again (~16-18 MB of RSS per live thread, more after fragmentation).
    Here the threads share one session, whose loader caches the model (a resource per
    thread then costs ~0.5 MB), and `shared_client` is one thread-safe low-level client
    for the whole process (`inspections.objectstore`).
    """

    def _create_session(self) -> Any:
        with _BOTO_LOCK:
            session = self.__dict__.get("_shared_session")
            if session is None:
                session = super()._create_session()
                self.__dict__["_shared_session"] = session
            return session

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        state.pop("_shared_session", None)
        state.pop("_shared_client", None)
        return state

    @property
    def connection(self) -> Any:
        if getattr(self._connections, "connection", None) is None:
            with _BOTO_LOCK:
                return super().connection
        return super().connection

    @property
    def shared_client(self) -> Any:
        """One low-level S3 client for every thread (botocore clients are thread-safe)."""
        client = self.__dict__.get("_shared_client")
        if client is None:
            with _BOTO_LOCK:
                client = self.__dict__.get("_shared_client")
                if client is None:
                    client = self._create_session().client(
                        "s3",
                        region_name=self.region_name,
                        use_ssl=self.use_ssl,
                        endpoint_url=self.endpoint_url,
                        config=self.client_config,
                        verify=self.verify,
                    )
                    self.__dict__["_shared_client"] = client
        return client


class TenantFileSystemStorage(TenantKeyMixin, FileSystemStorage):
    """Local files with tenant-prefixed paths: the fallback with no object store."""
