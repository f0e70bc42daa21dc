"""The usage ledger: one shared, append-mostly table under row-level security.

Usage rows are high-volume and read across workspaces by finance, so they live in
`public` rather than in every schema (ADR 0001). Isolation is enforced by
PostgreSQL: FORCE ROW LEVEL SECURITY with a policy that lets a tenant role see and
write only rows whose `tenant_schema` is its own.
"""

from __future__ import annotations

from django.db import models


class UsageRecord(models.Model):
    """A metered quantity (bytes stored, scans processed, API calls) for one workspace.

    Idempotent by `idempotency_key`: recording the same event twice leaves one row.
    """

    class Meter(models.TextChoices):
        SCAN_BYTES = "scan_bytes"
        SCANS_PROCESSED = "scans_processed"
        API_CALLS = "api_calls"
        DEVICE_DAYS = "device_days"

    tenant_schema = models.CharField(max_length=63, db_index=True)
    meter = models.CharField(max_length=32, choices=Meter.choices)
    quantity = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=128)

    class Meta:
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_schema", "idempotency_key"], name="usage_idempotent_per_tenant"
            ),
            models.CheckConstraint(condition=models.Q(quantity__gte=0),
                                   name="usage_quantity_non_negative"),
        ]
        indexes = [models.Index(fields=["tenant_schema", "meter", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.tenant_schema} {self.meter} {self.quantity}"
