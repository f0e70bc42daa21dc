"""Switch the default connection to the owner login, for migrations and provisioning.

Only management commands and provisioning tasks use this; requests never do. The
switch closes the connection, so it cannot be used inside an open transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def privileged() -> Iterator[None]:
    """Run the block on a connection logged in as the schema owner."""
    if connection.in_atomic_block:
        raise RuntimeError("privileged() cannot start inside a transaction.")
    previous = connection.privileged
    schema = connection.tenant
    connection.close()
    connection.privileged = connection.settings_dict["PRIVILEGED"] = True
    try:
        yield
    finally:
        connection.close()
        connection.privileged = connection.settings_dict["PRIVILEGED"] = previous
        connection.set_tenant(schema)
