"""Input and output serializers of the audit API."""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from audit.models import Entry, ExportJob, LogKey, Receipt, TreeHead


class EntrySerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    payload = serializers.SerializerMethodField()

    class Meta:
        model = Entry
        fields = ["seq", "time", "actor", "action", "object_type", "object_id", "payload",
                  "payload_sha256", "prev_hash", "entry_hash", "leaf_hash"]

    def get_payload(self, entry: Entry) -> dict[str, Any]:
        return json.loads(entry.payload)


class TreeHeadSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = TreeHead
        fields = ["size", "root_hash", "note", "key_id", "created_at"]


class LogKeySerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = LogKey
        fields = ["kind", "key_id", "public", "created_at"]


class InclusionProofSerializer(serializers.Serializer):  # type: ignore[type-arg]
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    leaf_hash = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField())
    tree_head = TreeHeadSerializer()


class ProofQuerySerializer(serializers.Serializer):  # type: ignore[type-arg]
    tree_size = serializers.IntegerField(min_value=1, required=False)


class ConsistencyQuerySerializer(serializers.Serializer):  # type: ignore[type-arg]
    old_size = serializers.IntegerField(min_value=0)
    new_size = serializers.IntegerField(min_value=0)


class ConsistencyProofSerializer(serializers.Serializer):  # type: ignore[type-arg]
    old_size = serializers.IntegerField()
    new_size = serializers.IntegerField()
    old_root = serializers.CharField()
    new_root = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField())


class ReceiptSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    entry_seq = serializers.IntegerField(source="entry.seq")
    document = serializers.SerializerMethodField()

    class Meta:
        model = Receipt
        fields = ["id", "entry_seq", "subject_type", "subject_id", "scan_sha256",
                  "cad_revision_sha256", "algorithm_version", "outcome", "document",
                  "created_at"]

    def get_document(self, receipt: Receipt) -> dict[str, Any]:
        return json.loads(receipt.document)


class ReceiptWithProofSerializer(ReceiptSerializer):
    inclusion = serializers.SerializerMethodField()

    class Meta(ReceiptSerializer.Meta):
        fields = [*ReceiptSerializer.Meta.fields, "inclusion"]

    def get_inclusion(self, receipt: Receipt) -> dict[str, Any] | None:
        proof = self.context.get("inclusion")
        return InclusionProofSerializer(proof).data if proof else None


class ExportJobSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = ExportJob
        fields = ["id", "kind", "status", "progress", "receipt", "from_time", "to_time",
                  "requested_by", "sha256", "error", "created_at", "finished_at"]


class ExportRequestSerializer(serializers.Serializer):  # type: ignore[type-arg]
    kind = serializers.ChoiceField(choices=ExportJob.Kind.choices)
    receipt = serializers.UUIDField(
        required=False, allow_null=True,
        help_text="The report's subject. Without a period, the export holds only its entry.")
    from_time = serializers.DateTimeField(
        required=False, allow_null=True,
        help_text="Start of the period to export (inclusive). Without a period and a "
                  "receipt, the whole log is exported.")
    to_time = serializers.DateTimeField(
        required=False, allow_null=True, help_text="End of the period (exclusive).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from_time"), attrs.get("to_time")
        if start and end and start >= end:
            raise serializers.ValidationError({"to_time": "Must be after from_time."})
        return attrs


class VerificationSerializer(serializers.Serializer):  # type: ignore[type-arg]
    ok = serializers.BooleanField()
    checks = serializers.ListField(child=serializers.CharField())
    failure = serializers.CharField(allow_null=True)
