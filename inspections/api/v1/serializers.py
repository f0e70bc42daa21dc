from __future__ import annotations

from rest_framework import serializers

from inspections.models import Asset, Encoding, Scan, Site, Upload


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["id", "name", "location", "timezone", "created_at"]
        read_only_fields = ["id", "created_at"]


class AssetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Asset
        fields = ["id", "site", "tag", "name", "kind", "created_at"]
        read_only_fields = ["id", "created_at"]


class UploadMetadataSerializer(serializers.Serializer):
    """The decoded tus `Upload-Metadata` of a new upload (see README, "Scan upload")."""

    asset = serializers.IntegerField(min_value=1)
    sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$")
    encoding = serializers.ChoiceField(choices=Encoding.choices)
    size = serializers.IntegerField(min_value=1, required=False)
    cad_revision = serializers.CharField(max_length=100, required=False, default="")
    captured_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    device = serializers.CharField(max_length=200, required=False, default="")
    firmware = serializers.CharField(max_length=100, required=False, default="")
    calibration = serializers.JSONField(required=False, default=dict)
    edge_transform = serializers.ListField(child=serializers.FloatField(), min_length=16,
                                           max_length=16, required=False, allow_null=True,
                                           default=None)
    operator = serializers.CharField(max_length=200, required=False, default="")
    filename = serializers.CharField(max_length=255, required=False, default="")

    def validate_calibration(self, value: object) -> object:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Calibration must be a JSON object.")
        return value


class ScanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Scan
        fields = ["id", "asset", "status", "sha256", "size_bytes", "encoding", "cad_revision",
                  "captured_at", "device", "firmware", "calibration", "edge_transform",
                  "operator", "received_at", "rejection_reason", "rejection_detail",
                  "point_count", "bounds", "attempts", "processed_at"]
        read_only_fields = fields


class UploadSerializer(serializers.ModelSerializer):
    scan_status = serializers.CharField(source="scan.status", default=None, read_only=True)

    class Meta:
        model = Upload
        fields = ["id", "status", "asset", "encoding", "filename", "declared_size",
                  "declared_sha256", "offset", "expires_at", "scan", "scan_status",
                  "deduplicated", "failure_reason", "failure_detail", "acknowledgement",
                  "created_at"]
        read_only_fields = fields


class AcknowledgementSerializer(serializers.Serializer):
    scan_id = serializers.UUIDField()
    upload_id = serializers.UUIDField()
    workspace = serializers.CharField()
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()
    received_at = serializers.CharField()
    deduplicated = serializers.BooleanField()
    alg = serializers.CharField()
    key_id = serializers.CharField()
    signature = serializers.CharField()


class AcknowledgementKeySerializer(serializers.Serializer):
    alg = serializers.CharField()
    key_id = serializers.CharField()
    public_key = serializers.CharField(help_text="Raw Ed25519 public key, base64.")
