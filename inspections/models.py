"""Sites and the assets (machines, structures) inspected there."""

from __future__ import annotations

from django.db import models


class Site(models.Model):
    """A plant, yard or facility of the workspace."""

    name = models.CharField(max_length=200, unique=True)
    location = models.CharField(max_length=300, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Asset(models.Model):
    """A machine or structure that is scanned and judged against its CAD model."""

    class Kind(models.TextChoices):
        MACHINE = "machine"
        STRUCTURE = "structure"
        PART = "part"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="assets")
    tag = models.CharField(max_length=100, help_text="The plant's own asset tag.")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MACHINE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site__name", "tag"]
        constraints = [
            models.UniqueConstraint(fields=["site", "tag"], name="asset_tag_unique_per_site")
        ]

    def __str__(self) -> str:
        return f"{self.tag} — {self.name}"
