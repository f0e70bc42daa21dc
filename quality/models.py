"""Tolerance contracts, QC runs, their results and the reviews of those results."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Decision(models.TextChoices):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    BORDERLINE = "borderline"
    FAIL = "fail"
    ABSTAIN = "abstain"


class ToleranceContract(models.Model):
    """One version of an asset's tolerance contract (quality.evaluation.ContractSpec).

    Versions are immutable: a change is a new row with `version + 1` for the same
    `asset` and `name`; results keep pointing at the version they were judged by.
    `spec` is validated by `ContractSpec.from_dict` before it is stored. Region labels in
    the spec refer to `cad_revision`'s regions (required when the spec names regions).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    asset = models.ForeignKey("inspections.Asset", on_delete=models.PROTECT,
                              related_name="tolerance_contracts")
    name = models.CharField(max_length=200, default="default")
    version = models.PositiveIntegerField()
    cad_revision = models.ForeignKey("twins.CadRevision", null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+")
    spec = models.JSONField()
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["asset", "name", "-version"]
        constraints = [models.UniqueConstraint(fields=["asset", "name", "version"],
                                               name="tolerance_contract_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class QcRun(models.Model):
    """A QC job: one scan judged against one CAD revision under one contract version.

    Lifecycle queued → running → done | failed. A worker claims it by a conditional
    UPDATE (queued, or running with an expired lease); only the lease holder may finish
    it. `progress` (0-100) and `stage` are stored and pushed on the tenant's WebSocket.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scan = models.ForeignKey("inspections.Scan", on_delete=models.PROTECT,
                             related_name="qc_runs")
    cad_revision = models.ForeignKey("twins.CadRevision", on_delete=models.PROTECT,
                                     related_name="qc_runs")
    contract = models.ForeignKey(ToleranceContract, on_delete=models.PROTECT,
                                 related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=30, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="qc_run_status_created")]

    def __str__(self) -> str:
        return f"QC run {self.id} ({self.status})"


class QcResult(models.Model):
    """The machine's verdict on a run, written once and never changed.

    `reasons` say which gates, regions and criteria decided it, with numbers;
    `regions` hold per-region statistics (mm); `alignment` the recovered transform and
    its quality; artifacts are object keys in the workspace's storage. Reviews add to
    it (QcReview) and never overwrite `decision`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.OneToOneField(QcRun, on_delete=models.PROTECT, related_name="result")
    decision = models.CharField(max_length=12, choices=Decision.choices)
    reasons = models.JSONField(default=list)
    gates = models.JSONField(default=list)
    regions = models.JSONField(default=list)
    summary = models.JSONField(default=dict, help_text="Point count, coverage, density, U.")
    alignment = models.JSONField(default=dict)
    uncertainty_mm = models.FloatField()
    offset = models.JSONField(default=list, help_text="Re-centring offset (m) of the "
                                                      "deviation computation.")
    algorithm_version = models.CharField(max_length=50)
    parameters = models.JSONField(default=dict)
    operator = models.CharField(max_length=200, blank=True)
    deviation_map_key = models.CharField(max_length=500, blank=True)
    histogram_key = models.CharField(max_length=500, blank=True)
    heatmap_key = models.CharField(max_length=500, blank=True)
    lod_key = models.CharField(max_length=500, blank=True)
    receipt_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["decision", "created_at"], name="qc_result_decision")]

    def __str__(self) -> str:
        return f"QC result {self.decision} ({self.run_id})"


class QcReview(models.Model):
    """A person's accept or override of a result; append-only, reason always given.

    The effective decision of a result is its latest review's (`decision` for an
    override, the machine's for an accept); the machine's verdict stays as it was.
    """

    class Action(models.TextChoices):
        ACCEPT = "accept"
        OVERRIDE = "override"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    result = models.ForeignKey(QcResult, on_delete=models.PROTECT, related_name="reviews")
    action = models.CharField(max_length=10, choices=Action.choices)
    decision = models.CharField(max_length=12, choices=Decision.choices)
    machine_decision = models.CharField(max_length=12, choices=Decision.choices)
    reason = models.TextField()
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                 related_name="+")
    audit_seq = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(reason=""), name="qc_review_reason"),
            models.CheckConstraint(
                condition=models.Q(action="override") | models.Q(decision=models.F(
                    "machine_decision")), name="qc_review_accept_keeps_decision"),
        ]

    def __str__(self) -> str:
        return f"{self.action} → {self.decision}"
