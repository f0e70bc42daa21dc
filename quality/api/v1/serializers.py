from __future__ import annotations

from typing import Any

from rest_framework import serializers

from quality.models import Decision, QcResult, QcReview, QcRun, ToleranceContract


class ContractCreateSerializer(serializers.Serializer):
    """Input: a new version of an asset's contract `name` (see ADR 0005 for `spec`)."""

    asset = serializers.IntegerField(min_value=1)
    name = serializers.CharField(max_length=200, default="default")
    cad_revision = serializers.UUIDField(required=False, allow_null=True, default=None)
    spec = serializers.JSONField()
    note = serializers.CharField(required=False, default="", allow_blank=True)

    def validate_spec(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("spec must be a JSON object")
        return value


class ContractSerializer(serializers.ModelSerializer):
    class Meta:
        model = ToleranceContract
        fields = ["id", "asset", "name", "version", "cad_revision", "spec", "note",
                  "created_at"]
        read_only_fields = fields


class RunCreateSerializer(serializers.Serializer):
    scan = serializers.UUIDField()
    contract = serializers.UUIDField()
    cad_revision = serializers.UUIDField(required=False, allow_null=True, default=None)


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", default=None, read_only=True)

    class Meta:
        model = QcReview
        fields = ["id", "action", "decision", "machine_decision", "reason", "reviewer",
                  "audit_seq", "created_at"]
        read_only_fields = fields


class ReviewCreateSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=QcReview.Action.choices)
    decision = serializers.ChoiceField(choices=Decision.choices, required=False,
                                       allow_null=True, default=None)
    reason = serializers.CharField(max_length=4000)


class ResultSerializer(serializers.ModelSerializer):
    reviews = ReviewSerializer(many=True, read_only=True)
    effective_decision = serializers.SerializerMethodField()

    class Meta:
        model = QcResult
        fields = ["id", "decision", "effective_decision", "reasons", "gates", "regions",
                  "summary", "alignment", "uncertainty_mm", "offset", "algorithm_version",
                  "parameters", "operator", "deviation_map_key", "histogram_key",
                  "heatmap_key", "lod_key", "receipt_id", "reviews", "created_at"]
        read_only_fields = fields

    def get_effective_decision(self, result: QcResult) -> str:
        from quality.selectors import effective_decision

        return effective_decision(result)


class RunSerializer(serializers.ModelSerializer):
    result = serializers.SerializerMethodField()

    class Meta:
        model = QcRun
        fields = ["id", "scan", "cad_revision", "contract", "status", "stage", "progress",
                  "attempts", "error", "created_at", "started_at", "finished_at", "result"]
        read_only_fields = fields

    def get_result(self, run: QcRun) -> dict[str, Any] | None:
        result = getattr(run, "result", None) if hasattr(run, "result") else None
        return ResultSerializer(result).data if result is not None else None
