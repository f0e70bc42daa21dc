from __future__ import annotations

from rest_framework import serializers

from inspections.models import Asset, Site


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
