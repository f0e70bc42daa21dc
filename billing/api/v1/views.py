"""Finance's view of the workspace's metered usage."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import needs
from accounts.roles import Capability
from billing import selectors
from billing.models import UsageRecord
from d2r.api.views import TenantScopedMixin


class UsageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    meter = serializers.ChoiceField(choices=UsageRecord.Meter.choices)
    total = serializers.IntegerField()


class UsageSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    totals = serializers.DictField(child=serializers.IntegerField())
    days = UsageDaySerializer(many=True)


class UsageApi(TenantScopedMixin, APIView):
    """Usage of this workspace by meter (rows confined by row-level security)."""

    permission_classes = [needs(Capability.VIEW_USAGE)]

    @extend_schema(parameters=[OpenApiParameter("days", int, description="1-366, default 30")],
                   responses=UsageSerializer, summary="Metered usage")
    def get(self, request: Request) -> Response:
        try:
            days = min(max(int(request.query_params.get("days", 30)), 1), 366)
        except ValueError as exc:
            raise serializers.ValidationError({"days": ["Must be a whole number."]}) from exc
        since = timezone.now() - timedelta(days=days)
        rows = selectors.usage_by_day(since=since)
        totals: dict[str, int] = {}
        for row in rows:
            totals[row["meter"]] = totals.get(row["meter"], 0) + row["total"]
        return Response(UsageSerializer({"since": since, "totals": totals, "days": rows}).data)
