"""Reads of the usage ledger (rows limited by the database's row-level security)."""

from __future__ import annotations

from django.db.models import Sum

from billing.models import UsageRecord


def usage_total(*, meter: str) -> int:
    """Total of a meter over the rows the current role may see."""
    total = UsageRecord.objects.filter(meter=meter).aggregate(total=Sum("quantity"))["total"]
    return int(total or 0)
