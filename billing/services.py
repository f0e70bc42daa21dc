"""Writes to the usage ledger."""

from __future__ import annotations

from datetime import datetime

from django.db import connection


def usage_record(*, meter: str, quantity: int, occurred_at: datetime,
                 idempotency_key: str) -> None:
    """Record usage for the current workspace; a repeated key records nothing.

    The row's `tenant_schema` is the connection's schema, and the database's policy
    refuses any other value, so a tenant cannot record usage for another one.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO public.billing_usagerecord "
            "(tenant_schema, meter, quantity, occurred_at, idempotency_key) "
            "VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (tenant_schema, idempotency_key) DO NOTHING",
            [connection.schema_name, meter, quantity, occurred_at, idempotency_key],
        )
