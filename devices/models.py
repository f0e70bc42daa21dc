"""The device registry: edge LiDAR units and their lifecycle."""

from __future__ import annotations

import uuid

from django.db import models


class Device(models.Model):
    """An edge device. Only `active` devices authenticate; the others are refused at once.

    Lifecycle: provisioned → active → suspended ⇄ active → decommissioned (final).
    """

    class State(models.TextChoices):
        PROVISIONED = "provisioned"
        ACTIVE = "active"
        SUSPENDED = "suspended"
        DECOMMISSIONED = "decommissioned"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    serial = models.CharField(max_length=100, unique=True)
    model = models.CharField(max_length=100)
    firmware = models.CharField(max_length=50, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PROVISIONED)
    public_key_pem = models.TextField(
        blank=True, help_text="The device's own public key (Ed25519 or P-256) for signed JWTs."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    state_changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["serial"]

    def __str__(self) -> str:
        return f"{self.serial} ({self.state})"
