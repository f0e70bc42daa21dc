"""The device registry: edge LiDAR units and their lifecycle."""

from __future__ import annotations

import uuid

import pghistory
from django.db import models


@pghistory.track()
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


class DeviceCA(models.Model):
    """The workspace's device certificate authority (one row, created on first use).

    The private key is stored encrypted with a key derived from the platform secret and
    the schema name, so a copy of this table alone cannot issue certificates.
    """

    certificate_pem = models.TextField()
    private_key_encrypted = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "device certificate authority"

    def __str__(self) -> str:
        return "Device CA"


class DeviceCertificate(models.Model):
    """A client certificate issued to a device from its CSR (its key never leaves it)."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="certificates")
    serial_number = models.CharField(max_length=40, unique=True)
    fingerprint_sha256 = models.CharField(max_length=64, unique=True)
    certificate_pem = models.TextField()
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.device.serial} #{self.serial_number[:8]}"
