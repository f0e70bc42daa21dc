"""tus 1.0 resumable uploads of scans under /api/v1/uploads (core, creation,
expiration, checksum, termination), plus JSON reads of an upload and its receipt.

Responses stay tus-compliant (`Tus-Resumable` on every response, the status codes
tus clients act on: 409 offset conflict, 460 checksum mismatch, 410 gone); error
bodies are problem+json with the slugs of d2r.api.problems.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import needs
from accounts.roles import Capability
from d2r.api.problems import CONTENT_TYPE, problem_body
from d2r.api.views import TenantScopedMixin
from d2r.streaming import StreamingBody
from inspections import acknowledgements, selectors, services
from inspections.api.v1.serializers import (
    AcknowledgementKeySerializer,
    AcknowledgementSerializer,
    UploadMetadataSerializer,
    UploadSerializer,
)
from inspections.models import Upload

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,expiration,checksum,termination"
TUS_CONTENT_TYPE = "application/offset+octet-stream"
_JSON_METADATA = ("calibration", "edge_transform")


class TusProblem(Exception):
    def __init__(self, slug: str, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.slug, self.detail, self.status = slug, detail, status


def _problem(request: Request, slug: str, detail: str, status: int | None = None
             ) -> HttpResponse:
    body = problem_body(request._request, slug, detail=detail, status=status)
    if request.method == "HEAD":
        return HttpResponse(status=body["status"])
    return HttpResponse(json.dumps(body), status=body["status"], content_type=CONTENT_TYPE)


def parse_metadata(header: str) -> dict[str, str]:
    """tus `Upload-Metadata`: comma-separated `key base64value` pairs."""
    result: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in header.split(","))):
        key, _, encoded = item.partition(" ")
        try:
            result[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise TusProblem("validation-error", f"Upload-Metadata {key!r} is not base64 "
                             "of UTF-8 text.") from exc
    return result


def _int_header(request: Request, name: str) -> int:
    value = request.headers.get(name, "")
    if not value.isdigit():
        raise TusProblem("validation-error", f"{name} must be a non-negative integer.")
    return int(value)


class TusMixin(TenantScopedMixin):
    """tus headers on every response; the tus version checked on every request."""

    permission_classes = [needs(Capability.VIEW_INSPECTIONS, Capability.INGEST)]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
            raise TusProblem("tus-version-unsupported",
                             f"Send `Tus-Resumable: {TUS_VERSION}`.")

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, TusProblem | services.UploadProblem):
            return _problem(self.request, exc.slug, exc.detail, exc.status)
        return super().handle_exception(exc)  # type: ignore[misc]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any
                          ) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        response["Tus-Resumable"] = TUS_VERSION
        response["Cache-Control"] = "no-store"
        if response.status_code == 412:
            response["Tus-Version"] = TUS_VERSION
        return response


def _upload_headers(response: HttpResponse, upload: Upload) -> HttpResponse:
    response["Upload-Offset"] = str(upload.offset)
    response["Upload-Length"] = str(upload.declared_size)
    if upload.status == Upload.Status.UPLOADING:
        response["Upload-Expires"] = http_date(upload.expires_at.timestamp())
    response["D2R-Upload-Status"] = upload.status
    if upload.scan_id:
        response["D2R-Scan-Id"] = str(upload.scan_id)
        response["D2R-Deduplicated"] = "true" if upload.deduplicated else "false"
    return response


class UploadCollectionApi(TusMixin, APIView):
    """`POST /uploads` opens an upload (tus creation); `OPTIONS` describes the server."""

    def get_permissions(self) -> list[Any]:
        return [] if self.request.method == "OPTIONS" else super().get_permissions()

    @extend_schema(summary="tus discovery", responses={204: None})
    def options(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        response = HttpResponse(status=204)
        response["Tus-Version"] = TUS_VERSION
        response["Tus-Extension"] = TUS_EXTENSIONS
        response["Tus-Max-Size"] = str(settings.INGEST_MAX_UPLOAD_BYTES)
        response["Tus-Checksum-Algorithm"] = ",".join(services.CHECKSUM_ALGORITHMS)
        return response

    @extend_schema(
        summary="Open a resumable scan upload (tus creation)",
        request=None, responses={201: None},
        parameters=[
            OpenApiParameter("Upload-Length", OpenApiTypes.INT, OpenApiParameter.HEADER, True),
            OpenApiParameter("Upload-Metadata", OpenApiTypes.STR, OpenApiParameter.HEADER, True,
                             description="asset, sha256, encoding required; size, "
                             "cad_revision, captured_at, device, firmware, calibration "
                             "(JSON), edge_transform (JSON, 16 numbers), operator, filename."),
            OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER),
        ],
    )
    def post(self, request: Request) -> HttpResponse:
        if request.headers.get("Upload-Defer-Length"):
            raise TusProblem("validation-error", "Deferred lengths are not supported.")
        length = _int_header(request, "Upload-Length")
        raw = parse_metadata(request.headers.get("Upload-Metadata", ""))
        data: dict[str, Any] = dict(raw)
        for name in _JSON_METADATA:
            if name in data:
                try:
                    data[name] = json.loads(data[name])
                except json.JSONDecodeError as exc:
                    raise TusProblem("validation-error", f"{name} is not JSON.") from exc
        serializer = UploadMetadataSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        meta = serializer.validated_data
        if meta.get("size") is not None and meta["size"] != length:
            raise TusProblem("size-mismatch", f"Metadata size {meta['size']} differs from "
                             f"Upload-Length {length}.")
        # A device's own credential names the device; it cannot claim to be another one.
        credential_device = getattr(request.user, "device_id", None)
        device = str(request.user) if credential_device else meta["device"]
        spec = services.UploadSpec(
            asset_id=meta["asset"], size=length, sha256=meta["sha256"],
            encoding=meta["encoding"], cad_revision=meta["cad_revision"],
            captured_at=meta["captured_at"], device=device, firmware=meta["firmware"],
            calibration=meta["calibration"], edge_transform=meta["edge_transform"],
            operator=meta["operator"], filename=meta["filename"],
        )
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and len(key) > 200:
            raise TusProblem("validation-error", "Idempotency-Key is longer than 200 characters.")
        upload, created = services.upload_create(spec=spec, user=request.user,
                                                 idempotency_key=key)
        response = _upload_headers(HttpResponse(status=201), upload)
        # Relative: right behind any proxy, and for clients that pin the Host header.
        response["Location"] = f"/api/v1/uploads/{upload.id}"
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response


class UploadApi(TusMixin, APIView):
    """One upload: `HEAD` offset, `PATCH` append, `DELETE` terminate, `GET` status (JSON)."""

    def _get(self, upload_id: uuid.UUID) -> Upload:
        upload = selectors.upload_get(upload_id=upload_id)
        if upload is None:
            raise TusProblem("not-found", "No such upload in this workspace.")
        return upload

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method == "GET":  # the JSON read is not a tus request
            TenantScopedMixin.initial(self, request, *args, **kwargs)
            return
        super().initial(request, *args, **kwargs)

    @extend_schema(summary="An upload's state, scan and acknowledgement",
                   responses=UploadSerializer)
    def get(self, request: Request, upload_id: uuid.UUID) -> Response:
        return Response(UploadSerializer(self._get(upload_id)).data)

    @extend_schema(summary="The upload's committed offset (tus)", responses={200: None})
    def head(self, request: Request, upload_id: uuid.UUID) -> HttpResponse:
        upload = self._get(upload_id)
        if upload.status in (Upload.Status.TERMINATED, Upload.Status.EXPIRED,
                             Upload.Status.FAILED):
            return HttpResponse(status=410)
        return _upload_headers(HttpResponse(status=200), upload)

    @extend_schema(summary="Append bytes at Upload-Offset (tus)", request=None,
                   responses={204: None},
                   parameters=[
                       OpenApiParameter("Upload-Offset", OpenApiTypes.INT,
                                        OpenApiParameter.HEADER, True),
                       OpenApiParameter("Upload-Checksum", OpenApiTypes.STR,
                                        OpenApiParameter.HEADER,
                                        description="`sha256 <base64>` or `sha1 <base64>`"),
                   ])
    def patch(self, request: Request, upload_id: uuid.UUID) -> HttpResponse:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type != TUS_CONTENT_TYPE:
            raise TusProblem("unsupported-media-type", f"PATCH needs {TUS_CONTENT_TYPE}.",
                             status=415)
        offset = _int_header(request, "Upload-Offset")
        length = _int_header(request, "Content-Length")
        checksum = None
        if request.headers.get("Upload-Checksum"):
            algorithm, _, encoded = request.headers["Upload-Checksum"].partition(" ")
            if algorithm not in services.CHECKSUM_ALGORITHMS:
                raise TusProblem("validation-error",
                                 f"Checksum algorithm {algorithm!r} is not supported.")
            try:
                checksum = (algorithm, base64.b64decode(encoded, validate=True))
            except binascii.Error as exc:
                raise TusProblem("validation-error", "Upload-Checksum is not base64.") from exc
        # A streamed ASGI body (d2r.streaming) is handed over as is: it can `readinto`
        # the part buffer. Anything else (WSGI, tests) is read through the request.
        body = getattr(request._request, "_stream", None)
        stream = body if isinstance(body, StreamingBody) else request._request
        upload = services.upload_append(upload_id=upload_id, offset=offset,
                                        stream=stream, length=length, checksum=checksum)
        return _upload_headers(HttpResponse(status=204), upload)

    @extend_schema(summary="Terminate an upload (tus termination)", responses={204: None})
    def delete(self, request: Request, upload_id: uuid.UUID) -> HttpResponse:
        services.upload_terminate(upload_id=upload_id)
        return HttpResponse(status=204)


class UploadAcknowledgementApi(TenantScopedMixin, APIView):
    """The signed sync acknowledgement of a completed upload."""

    permission_classes = [needs(Capability.VIEW_INSPECTIONS)]

    @extend_schema(summary="The signed acknowledgement of a completed upload",
                   responses=AcknowledgementSerializer)
    def get(self, request: Request, upload_id: uuid.UUID) -> Response:
        upload = selectors.upload_get(upload_id=upload_id)
        if upload is None or not upload.acknowledgement:
            raise NotFound("No completed upload with this id in this workspace.")
        return Response(upload.acknowledgement)


class AcknowledgementKeyApi(TenantScopedMixin, APIView):
    """The public key that verifies acknowledgements (offline, on the device)."""

    permission_classes = [needs(Capability.VIEW_INSPECTIONS)]

    @extend_schema(summary="Public key of sync acknowledgements",
                   responses=AcknowledgementKeySerializer)
    def get(self, request: Request) -> Response:
        return Response({"alg": acknowledgements.ALGORITHM, "key_id": acknowledgements.key_id(),
                         "public_key": base64.b64encode(
                             acknowledgements.public_key_bytes()).decode()})
