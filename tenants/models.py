"""Workspaces (tenants), their domains and the plans they subscribe to."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin
from django_tenants.utils import get_public_schema_name

SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
RESERVED_SLUGS = frozenset({"public", "information_schema", "www", "api", "admin", "static"})


def validate_slug(value: str) -> None:
    if not SLUG_RE.match(value) or value in RESERVED_SLUGS or value.startswith("pg_"):
        raise ValidationError(
            "Use 2-40 lowercase letters, digits or underscores, starting with a letter "
            "(not a reserved name)."
        )


class Plan(models.Model):
    """A subscription tier: the limits enforced for every workspace on it."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    max_devices = models.PositiveIntegerField(default=10)
    max_storage_gb = models.PositiveIntegerField(default=500)
    api_requests_per_minute = models.PositiveIntegerField(default=1200)
    price_inr_per_device_year = models.PositiveIntegerField(default=300_000)

    class Meta:
        ordering = ["price_inr_per_device_year", "code"]

    def __str__(self) -> str:
        return self.name


class Tenant(TenantMixin):
    """A customer workspace. Its data lives in the schema `schema_name`.

    Invariants: `schema_name` never changes after creation; the schema and its
    database role exist exactly when `status` is `active` or `suspended`.
    """

    class Status(models.TextChoices):
        PROVISIONING = "provisioning"
        ACTIVE = "active"
        SUSPENDED = "suspended"
        FAILED = "failed"

    name = models.CharField(max_length=200)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices,
                              default=Status.PROVISIONING)
    status_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # The schema is created by tenants.services.tenant_provision under the owner login,
    # never implicitly by save() in a request running as the platform role.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.schema_name})"

    @property
    def is_public(self) -> bool:
        return bool(self.schema_name == get_public_schema_name())

    def clean(self) -> None:
        if self.schema_name != "public":
            validate_slug(self.schema_name)


class Domain(DomainMixin):
    """A host name that selects its workspace (e.g. `acme.d2r.example`)."""

    def __str__(self) -> str:
        return self.domain
