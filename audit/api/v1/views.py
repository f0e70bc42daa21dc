"""Audit API: the log, tree heads, proofs, receipts, exports and verification.

Reads need ``view_audit``; commands (issue a tree head, request an export) need
``export_audit``. The auditor role has exactly these two (accounts.roles).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import needs
from accounts.roles import Capability
from audit import selectors, services
from audit.api.v1 import serializers as s
from audit.models import Entry, ExportJob, Receipt, TreeHead
from d2r.api.pagination import CursorPagination
from d2r.api.views import TenantScopedMixin

AuditPermission = needs(Capability.VIEW_AUDIT, Capability.EXPORT_AUDIT)


class SeqPagination(CursorPagination):
    ordering = "seq"


class SizePagination(CursorPagination):
    ordering = "-size"


class CreatedPagination(CursorPagination):
    ordering = "-created_at"


def _actor(request: Request) -> str:
    return f"user:{request.user.get_username()}"


def _inclusion(seq: int, tree_size: int | None) -> selectors.InclusionProof | None:
    head = None
    if tree_size is not None:
        head = selectors.tree_head_list().filter(size=tree_size).last()
        if head is None:
            raise NotFound(f"No signed tree head of size {tree_size}.")
    return selectors.inclusion_proof_get(seq=seq, tree_head=head)


@extend_schema_view(list=extend_schema(summary="List audit log entries (by sequence number)"),
                    retrieve=extend_schema(summary="Get an audit log entry"))
class EntryViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    permission_classes = [AuditPermission]
    serializer_class = s.EntrySerializer
    pagination_class = SeqPagination
    queryset = Entry.objects.none()
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet[Entry]:
        return selectors.entry_list()

    @extend_schema(summary="Inclusion proof of an entry in a signed tree head",
                   parameters=[s.ProofQuerySerializer],
                   responses={200: s.InclusionProofSerializer})
    @action(detail=True, methods=["get"])
    def proof(self, request: Request, pk: str | None = None) -> Response:
        query = s.ProofQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        entry = self.get_object()
        proof = _inclusion(entry.seq, query.validated_data.get("tree_size"))
        if proof is None:
            raise NotFound("No signed tree head covers this entry yet.")
        return Response(s.InclusionProofSerializer(proof).data)


@extend_schema_view(list=extend_schema(summary="List signed tree heads (largest first)"))
class TreeHeadViewSet(TenantScopedMixin, mixins.ListModelMixin,
                      viewsets.GenericViewSet):  # type: ignore[type-arg]
    permission_classes = [AuditPermission]
    serializer_class = s.TreeHeadSerializer
    pagination_class = SizePagination
    queryset = TreeHead.objects.none()

    def get_queryset(self) -> QuerySet[TreeHead]:
        return selectors.tree_head_list()

    @extend_schema(summary="Sign a tree head over the whole log now", request=None,
                   responses={201: s.TreeHeadSerializer})
    def create(self, request: Request) -> Response:
        head = services.tree_head_issue()
        return Response(s.TreeHeadSerializer(head).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="The latest signed tree head", responses={200: s.TreeHeadSerializer})
    @action(detail=False, methods=["get"])
    def latest(self, request: Request) -> Response:
        head = selectors.tree_head_latest()
        if head is None:
            raise NotFound("No tree head has been signed yet.")
        return Response(s.TreeHeadSerializer(head).data)

    @extend_schema(summary="Consistency proof between two signed tree heads",
                   parameters=[s.ConsistencyQuerySerializer],
                   responses={200: s.ConsistencyProofSerializer})
    @action(detail=False, methods=["get"])
    def consistency(self, request: Request) -> Response:
        query = s.ConsistencyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        old_size, new_size = query.validated_data["old_size"], query.validated_data["new_size"]
        heads = {h.size: h for h in selectors.tree_head_list().filter(size__in=[old_size,
                                                                                 new_size])}
        if old_size > new_size:
            raise ValidationError({"old_size": "must not exceed new_size"})
        if old_size not in heads or new_size not in heads:
            raise NotFound("Both sizes must be sizes of signed tree heads.")
        return Response({
            "old_size": old_size, "new_size": new_size,
            "old_root": heads[old_size].root_hash, "new_root": heads[new_size].root_hash,
            "proof": selectors.consistency_proof_get(old_size=old_size, new_size=new_size),
        })


@extend_schema_view(list=extend_schema(summary="List run receipts"),
                    retrieve=extend_schema(summary="Get a run receipt with its inclusion proof",
                                           responses={200: s.ReceiptWithProofSerializer}))
class ReceiptViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    permission_classes = [AuditPermission]
    serializer_class = s.ReceiptSerializer
    pagination_class = CreatedPagination
    queryset = Receipt.objects.none()

    def get_queryset(self) -> QuerySet[Receipt]:
        return selectors.receipt_list()

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        receipt = self.get_object()
        proof = selectors.inclusion_proof_get(seq=receipt.entry.seq)
        return Response(s.ReceiptWithProofSerializer(receipt, context={"inclusion": proof}).data)


@extend_schema_view(list=extend_schema(summary="List exports"),
                    retrieve=extend_schema(summary="Get an export's status and progress"))
class ExportViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    permission_classes = [AuditPermission]
    serializer_class = s.ExportJobSerializer
    queryset = ExportJob.objects.none()

    def get_queryset(self) -> QuerySet[ExportJob]:
        return selectors.export_list()

    @extend_schema(summary="Request a signed JSON evidence bundle or PDF report (background)",
                   request=s.ExportRequestSerializer, responses={202: s.ExportJobSerializer})
    def create(self, request: Request) -> Response:
        data = s.ExportRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        receipt = data.validated_data.get("receipt")
        if receipt and not Receipt.objects.filter(pk=receipt).exists():
            raise ValidationError({"receipt": "No such receipt."})
        job = services.export_request(kind=data.validated_data["kind"],
                                      requested_by=_actor(request),
                                      receipt_id=str(receipt) if receipt else None,
                                      from_time=data.validated_data.get("from_time"),
                                      to_time=data.validated_data.get("to_time"))
        return Response(s.ExportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Download a finished export", responses={(200, "*/*"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> FileResponse:
        from django.core.files.storage import default_storage

        job = self.get_object()
        if job.status != ExportJob.Status.DONE:
            raise NotFound("The export is not finished.")
        suffix = "pdf" if job.kind == ExportJob.Kind.PDF else "jws"
        content_type = "application/pdf" if suffix == "pdf" else "application/jose"
        return FileResponse(default_storage.open(job.file_name, "rb"), as_attachment=True,
                            filename=f"d2r-audit-{job.pk}.{suffix}", content_type=content_type)


class LogKeysApi(TenantScopedMixin, APIView):
    permission_classes = [AuditPermission]

    @extend_schema(summary="Every public key the log has signed with",
                   responses={200: s.LogKeySerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(s.LogKeySerializer(selectors.log_key_list(), many=True).data)


class LogVerifyApi(TenantScopedMixin, APIView):
    permission_classes = [AuditPermission]

    @extend_schema(summary="Verify the stored log (chain, tree heads, receipts) now",
                   responses={200: s.VerificationSerializer})
    def get(self, request: Request) -> Response:
        result = selectors.log_verify()
        return Response({"ok": result.ok, "checks": result.checks, "failure": result.failure})
