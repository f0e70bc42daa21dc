"""Sites, assets, and the scans of them: resumable uploads, scans, the outbox."""

from __future__ import annotations

import uuid

import pghistory
from django.conf import settings
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


@pghistory.track()
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


class Encoding(models.TextChoices):
    """How a scan's bytes are encoded, as declared by the device."""

    LAS = "las"
    LAZ = "laz"
    LAS_GZIP = "las+gzip"
    LAS_ZSTD = "las+zstd"
    PLY = "ply"
    E57 = "e57"


class Upload(models.Model):
    """A resumable (tus 1.0) upload of one scan file into object storage.

    Invariants: `offset` bytes are durable in object storage — the S3 parts listed in
    `parts` plus the staged tail object `tail_key` (`tail_size` bytes); `offset` never
    exceeds `declared_size`; once `status` leaves `uploading` it never returns to it.
    A finished upload points at the Scan it produced (or the existing one it duplicates).
    """

    class Status(models.TextChoices):
        UPLOADING = "uploading"
        COMPLETED = "completed"
        TERMINATED = "terminated"
        EXPIRED = "expired"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UPLOADING)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="uploads")
    cad_revision = models.CharField(max_length=100, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    device = models.CharField(max_length=200, blank=True)
    firmware = models.CharField(max_length=100, blank=True)
    calibration = models.JSONField(default=dict, blank=True)
    edge_transform = models.JSONField(null=True, blank=True,
                                      help_text="Row-major 4x4 edge alignment transform.")
    operator = models.CharField(max_length=200, blank=True)
    filename = models.CharField(max_length=255, blank=True)
    encoding = models.CharField(max_length=20, choices=Encoding.choices)
    declared_size = models.BigIntegerField()
    declared_sha256 = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    offset = models.BigIntegerField(default=0)
    object_key = models.CharField(max_length=500)
    multipart_id = models.CharField(max_length=500, blank=True)
    parts = models.JSONField(default=list, blank=True)
    tail_key = models.CharField(max_length=500, blank=True)
    tail_size = models.BigIntegerField(default=0)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    scan = models.ForeignKey("inspections.Scan", null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="uploads")
    deduplicated = models.BooleanField(default=False)
    acknowledgement = models.JSONField(null=True, blank=True,
                                       help_text="The signed sync acknowledgement.")
    failure_reason = models.CharField(max_length=50, blank=True)
    failure_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "expires_at"], name="upload_status_expiry")]
        constraints = [
            models.CheckConstraint(condition=models.Q(offset__gte=0)
                                   & models.Q(offset__lte=models.F("declared_size")),
                                   name="upload_offset_within_size"),
        ]

    def __str__(self) -> str:
        return f"upload {self.id} ({self.status}, {self.offset}/{self.declared_size})"


class Scan(models.Model):
    """One received scan file, unique by content hash within the workspace.

    Lifecycle: received → processing → processed | rejected; `processing` is held by a
    lease (`lease_token`, `lease_until`) that a crashed worker lets expire, after which
    the scan is claimed again. Only the holder of the current lease may finish it.
    """

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        PROCESSED = "processed"
        REJECTED = "rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="scans")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    sha256 = models.CharField(max_length=64, unique=True)
    size_bytes = models.BigIntegerField()
    encoding = models.CharField(max_length=20, choices=Encoding.choices)
    raw_key = models.CharField(max_length=500)
    cad_revision = models.CharField(max_length=100, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    device = models.CharField(max_length=200, blank=True)
    firmware = models.CharField(max_length=100, blank=True)
    calibration = models.JSONField(default=dict, blank=True)
    edge_transform = models.JSONField(null=True, blank=True)
    operator = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField()
    rejection_reason = models.CharField(max_length=50, blank=True)
    rejection_detail = models.TextField(blank=True)
    point_count = models.BigIntegerField(null=True, blank=True)
    bounds = models.JSONField(null=True, blank=True)
    canonical_key = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["status", "received_at"], name="scan_status_received"),
                   models.Index(fields=["asset", "-received_at"], name="scan_asset_received")]

    def __str__(self) -> str:
        return f"scan {self.id} ({self.status})"


class OutboxMessage(models.Model):
    """A task to dispatch, written in the same transaction as the state it acts on.

    Dispatched on commit; the beat sweep re-dispatches rows not yet `done_at` whose
    last dispatch is older than the stale interval, so a crash or a lost broker
    message between commit and queue delays the work but never loses it.
    """

    class Topic(models.TextChoices):
        SCAN_PROCESS = "scan.process"

    topic = models.CharField(max_length=50, choices=Topic.choices)
    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="outbox")
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_count = models.PositiveIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["done_at", "dispatched_at"], name="outbox_pending")]
        constraints = [models.UniqueConstraint(fields=["topic", "scan"],
                                               name="outbox_one_per_topic_and_scan")]

    def __str__(self) -> str:
        return f"{self.topic} {self.scan_id}"
