"""Tolerance contracts (create-by-version), QC runs (request, read), reviews."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import needs
from accounts.roles import Capability
from d2r.api.pagination import CursorPagination
from d2r.api.problems import CONTENT_TYPE, problem_body
from d2r.api.views import TenantScopedMixin
from inspections.selectors import asset_list
from quality import selectors, services
from quality.api.v1.serializers import (
    ContractCreateSerializer,
    ContractSerializer,
    ReviewCreateSerializer,
    ReviewSerializer,
    RunCreateSerializer,
    RunSerializer,
)
from quality.models import QcRun, ToleranceContract


class QcProblemMixin:
    """QcProblem → problem+json with its slug."""

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, services.QcProblem):
            body = problem_body(self.request._request, exc.slug,  # type: ignore[attr-defined]
                                detail=exc.detail)
            return Response(body, status=body["status"], content_type=CONTENT_TYPE)
        return super().handle_exception(exc)  # type: ignore[misc]


_READ = (mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet)



class NewestFirst(CursorPagination):
    """UUID primary keys carry no order: page by creation time instead."""

    ordering = "-created_at"

@extend_schema_view(list=extend_schema(summary="List tolerance contract versions"),
                    retrieve=extend_schema(summary="Get a tolerance contract version"))
class ContractViewSet(QcProblemMixin, TenantScopedMixin, *_READ):  # type: ignore[misc]
    """Versions are immutable: POST records the next version of (asset, name)."""

    permission_classes = [needs(Capability.VIEW_INSPECTIONS, Capability.MANAGE_ASSETS)]
    serializer_class = ContractSerializer
    pagination_class = NewestFirst
    queryset = ToleranceContract.objects.none()

    def get_queryset(self) -> QuerySet[ToleranceContract]:
        asset = self.request.query_params.get("asset")
        if asset is not None and not asset.isdigit():
            raise ValidationError({"asset": "must be an asset id"})
        return selectors.contract_list(asset_id=int(asset) if asset else None)

    @extend_schema(summary="Record a new contract version", request=ContractCreateSerializer,
                   responses={201: ContractSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        given = ContractCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        if not asset_list().filter(pk=data["asset"]).exists():
            raise ValidationError({"asset": f"no asset {data['asset']} in this workspace"})
        contract = services.contract_create(
            asset_id=data["asset"], spec=data["spec"], name=data["name"],
            cad_revision_id=data["cad_revision"], note=data["note"], user=request.user)
        return Response(ContractSerializer(contract).data, status=status.HTTP_201_CREATED)


@extend_schema_view(list=extend_schema(summary="List QC runs"),
                    retrieve=extend_schema(summary="Get a QC run with its result"))
class QcRunViewSet(QcProblemMixin, TenantScopedMixin, *_READ):  # type: ignore[misc]
    """Runs are requested here and executed by a worker; progress is also pushed on the
    workspace's WebSocket (`qc.run` events)."""

    permission_classes = [needs(Capability.VIEW_INSPECTIONS, Capability.INGEST)]
    serializer_class = RunSerializer
    pagination_class = NewestFirst
    queryset = QcRun.objects.none()

    def get_queryset(self) -> QuerySet[QcRun]:
        return selectors.qc_run_list()

    @extend_schema(summary="Request a QC run of a processed scan", request=RunCreateSerializer,
                   responses={202: RunSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        given = RunCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        run = services.qc_run_request(scan_id=data["scan"], contract_id=data["contract"],
                                      cad_revision_id=data["cad_revision"], user=request.user)
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class QcReviewViewSet(QcProblemMixin, TenantScopedMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    """`POST /qc-runs/{id}/review`: accept or override the run's result (reason required)."""

    permission_classes = [needs(Capability.VIEW_INSPECTIONS, Capability.REVIEW)]
    serializer_class = ReviewCreateSerializer
    queryset = QcRun.objects.none()

    @extend_schema(summary="Accept or override a QC result (never changes the machine's "
                   "verdict)", request=ReviewCreateSerializer, responses={201: ReviewSerializer})
    @action(detail=True, methods=["post"], url_path="review")
    def review(self, request: Request, pk: str | None = None) -> Response:
        given = ReviewCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        run = selectors.qc_run_get(run_id=pk) if pk else None
        result = getattr(run, "result", None) if run is not None else None
        if run is None:
            raise NotFound()
        if result is None:
            raise services.QcProblem("conflict", "The run has no result yet.")
        review = services.qc_review_record(result_id=result.pk, action=data["action"],
                                           decision=data["decision"], reason=data["reason"],
                                           user=request.user)
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)
