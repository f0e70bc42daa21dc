"""CAD revisions of an asset: the reference a scan is judged against."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class CadRevision(models.Model):
    """One uploaded CAD model of an asset, immutable once recorded.

    Invariants: `number` grows by one per asset from 1; the source file (`source_key`),
    the validated mesh in metres (`mesh_key`, .npz) and its face regions (`regions_key`,
    .npy, one label per triangle) are written to the workspace's object storage before
    the row commits and never change; `sha256` is the source file's, unique per asset
    (uploading the same file again returns the existing revision). A mesh that cannot
    be trusted as a reference (empty, broken, every triangle degenerate) is refused,
    never recorded; legal-but-notable conditions are listed in `warnings`.
    """

    class Units(models.TextChoices):
        M = "m"
        MM = "mm"
        CM = "cm"
        UM = "um"
        INCH = "in"
        FOOT = "ft"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    asset = models.ForeignKey("inspections.Asset", on_delete=models.PROTECT,
                              related_name="cad_revisions")
    number = models.PositiveIntegerField()
    label = models.CharField(max_length=100, blank=True,
                             help_text="The customer's revision name (e.g. `R3`), as devices "
                                       "report it.")
    author = models.CharField(max_length=200, blank=True)
    change_note = models.TextField(blank=True)
    filename = models.CharField(max_length=255)
    source_format = models.CharField(max_length=10)
    units = models.CharField(max_length=4, choices=Units.choices)
    scale_to_m = models.FloatField(help_text="Factor from the file's units to metres.")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    source_key = models.CharField(max_length=500)
    mesh_key = models.CharField(max_length=500)
    regions_key = models.CharField(max_length=500)
    vertex_count = models.PositiveIntegerField()
    triangle_count = models.PositiveIntegerField()
    region_count = models.PositiveIntegerField()
    area_m2 = models.FloatField()
    bbox_min = models.JSONField(help_text="Metres.")
    bbox_max = models.JSONField(help_text="Metres.")
    watertight = models.BooleanField()
    report = models.JSONField(default=dict, help_text="mesh_inspect's findings.")
    warnings = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["asset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "number"], name="cad_revision_number_unique"),
            models.UniqueConstraint(fields=["asset", "sha256"], name="cad_revision_file_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} rev {self.number}{f' ({self.label})' if self.label else ''}"
