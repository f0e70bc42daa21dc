from __future__ import annotations

from rest_framework import serializers

from twins.models import CadRevision
from twins.services import UNITS_TO_M


class CadRevisionUploadSerializer(serializers.Serializer):
    """Input of a CAD upload (multipart): the file and what it is."""

    asset = serializers.IntegerField(min_value=1)
    file = serializers.FileField()
    units = serializers.ChoiceField(choices=sorted(UNITS_TO_M))
    label = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    author = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    change_note = serializers.CharField(required=False, default="", allow_blank=True)


class CadRevisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = CadRevision
        fields = ["id", "asset", "number", "label", "author", "change_note", "filename",
                  "source_format", "units", "scale_to_m", "sha256", "size_bytes",
                  "vertex_count", "triangle_count", "region_count", "area_m2", "bbox_min",
                  "bbox_max", "watertight", "warnings", "created_at"]
        read_only_fields = fields
