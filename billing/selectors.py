"""Reads of the usage ledger (rows limited by the database's row-level security)."""

from __future__ import annotations

from typing import Any

from django.db.models import Sum
from django.db.models.functions import TruncDate

from billing.models import UsageRecord


def usage_total(*, meter: str) -> int:
    """Total of a meter over the rows the current role may see."""
    total = UsageRecord.objects.filter(meter=meter).aggregate(total=Sum("quantity"))["total"]
    return int(total or 0)


def usage_by_day(*, since: Any) -> list[dict[str, Any]]:
    """Per day and meter, the totals the current role may see, oldest first."""
    rows = (UsageRecord.objects.filter(occurred_at__gte=since)
            .annotate(day=TruncDate("occurred_at")).values("day", "meter")
            .annotate(total=Sum("quantity")).order_by("day", "meter"))
    return [{"day": r["day"], "meter": r["meter"], "total": int(r["total"])} for r in rows]
