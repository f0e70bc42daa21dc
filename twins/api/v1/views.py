"""CAD revisions under /api/v1/cad-revisions: upload (multipart) and reads."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import needs
from accounts.roles import Capability
from d2r.api.pagination import CursorPagination
from d2r.api.views import TenantScopedMixin
from inspections.selectors import asset_list
from twins import selectors, services
from twins.api.v1.serializers import CadRevisionSerializer, CadRevisionUploadSerializer
from twins.models import CadRevision


class NewestFirst(CursorPagination):
    """UUID primary keys carry no order: page by creation time instead."""

    ordering = "-created_at"

@extend_schema_view(
    list=extend_schema(summary="List CAD revisions",
                       parameters=[OpenApiParameter("asset", int, description="Asset id")]),
    retrieve=extend_schema(summary="Get a CAD revision"),
)
class CadRevisionViewSet(TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                         viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Revisions are immutable: upload a new one rather than change an old one."""

    permission_classes = [needs(Capability.VIEW_INSPECTIONS, Capability.MANAGE_ASSETS)]
    serializer_class = CadRevisionSerializer
    pagination_class = NewestFirst
    parser_classes = [MultiPartParser, FormParser]
    queryset = CadRevision.objects.none()

    def get_queryset(self) -> QuerySet[CadRevision]:
        asset = self.request.query_params.get("asset")
        if asset is not None and not asset.isdigit():
            raise ValidationError({"asset": "must be an asset id"})
        return selectors.cad_revision_list(asset_id=int(asset) if asset else None)

    @extend_schema(summary="Upload a CAD revision (STL, OBJ, PLY, OFF, GLB/glTF)",
                   request={"multipart/form-data": CadRevisionUploadSerializer},
                   responses={201: CadRevisionSerializer, 200: CadRevisionSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        given = CadRevisionUploadSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        if not asset_list().filter(pk=data["asset"]).exists():
            raise ValidationError({"asset": f"no asset {data['asset']} in this workspace"})
        upload = data["file"]
        if upload.size > services.MAX_CAD_BYTES:
            raise ValidationError({"file": f"larger than {services.MAX_CAD_BYTES} bytes"})
        try:
            revision, created = services.cad_revision_create(
                asset_id=data["asset"], data=upload.read(), filename=upload.name,
                units=data["units"], label=data["label"], author=data["author"],
                change_note=data["change_note"], user=request.user)
        except services.CadRefused as exc:
            raise ValidationError({"file": exc.reason}) from exc
        return Response(CadRevisionSerializer(revision).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
