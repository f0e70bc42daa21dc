from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from accounts.permissions import needs
from accounts.roles import Capability
from d2r.api.views import TenantModelViewSet, TenantScopedMixin
from inspections import selectors
from inspections.api.v1.serializers import AssetSerializer, ScanSerializer, SiteSerializer
from inspections.models import Asset, Scan, Site


@extend_schema_view(
    list=extend_schema(summary="List sites"), create=extend_schema(summary="Create a site"),
    retrieve=extend_schema(summary="Get a site"), update=extend_schema(summary="Replace a site"),
    partial_update=extend_schema(summary="Update a site"),
    destroy=extend_schema(summary="Delete a site (only without assets)"),
)
class SiteViewSet(TenantModelViewSet):
    permission_classes = [needs(Capability.VIEW_INSPECTIONS, Capability.MANAGE_ASSETS)]
    serializer_class = SiteSerializer
    queryset = Site.objects.none()  # for the schema; rows come from get_queryset

    def get_queryset(self) -> QuerySet[Site]:
        return selectors.site_list()


@extend_schema_view(
    list=extend_schema(summary="List assets"), create=extend_schema(summary="Create an asset"),
    retrieve=extend_schema(summary="Get an asset"),
    update=extend_schema(summary="Replace an asset"),
    partial_update=extend_schema(summary="Update an asset"),
    destroy=extend_schema(summary="Delete an asset"),
)
class AssetViewSet(TenantModelViewSet):
    permission_classes = [needs(Capability.VIEW_INSPECTIONS, Capability.MANAGE_ASSETS)]
    serializer_class = AssetSerializer
    queryset = Asset.objects.none()

    def get_queryset(self) -> QuerySet[Asset]:
        return selectors.asset_list()


@extend_schema_view(list=extend_schema(summary="List scans"),
                    retrieve=extend_schema(summary="Get a scan"))
class ScanViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    """Scans of the workspace (created by uploads; read-only here)."""

    permission_classes = [needs(Capability.VIEW_INSPECTIONS)]
    serializer_class = ScanSerializer
    queryset = Scan.objects.none()

    def get_queryset(self) -> QuerySet[Scan]:
        return selectors.scan_list()
