from __future__ import annotations

from rest_framework import serializers

from accounts.models import ApiKey
from accounts.roles import Capability, Role


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    otp = serializers.RegexField(
        r"^[0-9]{6}$", required=False, help_text="The authenticator code, when the user has MFA."
    )


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField()


class RefreshRequestSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=200)


class MeSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    role = serializers.CharField(allow_null=True)
    workspace = serializers.CharField()


class ApiKeyCreateSerializer(serializers.Serializer):
    """Input only: `role` is chosen, but never above the creator's own reach."""

    name = serializers.CharField(max_length=200)
    role = serializers.ChoiceField(choices=[r.value for r in Role])
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=[c.value for c in Capability]),
        required=False,
        default=list,
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "role",
            "scopes",
            "device",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields
