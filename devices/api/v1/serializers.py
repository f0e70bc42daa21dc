from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from rest_framework import serializers

from devices.models import Device


class DeviceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Device
        fields = [
            "id",
            "uid",
            "serial",
            "model",
            "firmware",
            "state",
            "public_key_pem",
            "created_at",
            "state_changed_at",
        ]
        read_only_fields = ["id", "uid", "state", "created_at", "state_changed_at"]

    def validate_public_key_pem(self, value: str) -> str:
        if not value:
            return value
        try:
            key = serialization.load_pem_public_key(value.encode())
        except ValueError as exc:
            raise serializers.ValidationError("Not a PEM public key.") from exc
        if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
            raise serializers.ValidationError("Use an Ed25519 or P-256 key.")
        if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name != "secp256r1":
            raise serializers.ValidationError("Only the P-256 curve is accepted.")
        return value


class DeviceKeySerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Shown once; install it on the device now.")
    prefix = serializers.CharField()


class CertificateRequestSerializer(serializers.Serializer):
    csr = serializers.CharField(max_length=8192, help_text="PEM certificate signing request.")


class DeviceCertificateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    serial_number = serializers.CharField()
    certificate_pem = serializers.CharField()
    not_before = serializers.DateTimeField()
    not_after = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
