"""RFC 9457 problem details: one error envelope for every 4xx/5xx of the API.

Each problem has a stable `type` URI (`<PROBLEM_BASE>/<slug>`) that clients may switch
on; `title` is the same for every occurrence, `detail` explains this one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from d2r.logging import current_request_id

logger = logging.getLogger(__name__)
PROBLEM_BASE = "https://docs.d2r.cloud/problems"
CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    status: int
    title: str
    default_detail: str


PROBLEMS: dict[str, ProblemType] = {
    "validation-error": ProblemType(400, "Invalid request", "The request body is invalid."),
    "parse-error": ProblemType(400, "Malformed request", "The request body could not be parsed."),
    "not-authenticated": ProblemType(401, "Not authenticated",
                                     "Authentication credentials were not provided."),
    "authentication-failed": ProblemType(401, "Authentication failed",
                                         "The credentials are invalid."),
    "device-refused": ProblemType(403, "Device refused",
                                  "The device is not active (suspended or decommissioned)."),
    "permission-denied": ProblemType(403, "Permission denied",
                                     "Your role does not allow this action."),
    "credential-tenant-mismatch": ProblemType(
        403, "Credential of another workspace",
        "The credential belongs to a different workspace than this host.",
    ),
    "tenant-suspended": ProblemType(403, "Workspace suspended",
                                    "This workspace is suspended; contact your administrator."),
    "not-found": ProblemType(404, "Not found", "No such resource."),
    "tenant-not-found": ProblemType(404, "Workspace not found", "No workspace is served here."),
    "method-not-allowed": ProblemType(405, "Method not allowed",
                                      "This method is not allowed on this resource."),
    "not-acceptable": ProblemType(406, "Not acceptable",
                                  "The requested representation is not available."),
    "conflict": ProblemType(409, "Conflict", "The request conflicts with the current state."),
    "unsupported-media-type": ProblemType(415, "Unsupported media type",
                                          "The request's content type is not supported."),
    "throttled": ProblemType(429, "Too many requests", "Request rate limit exceeded."),
    # Scan ingestion (tus uploads, issue 4); tus adds its own 460 for checksums.
    "checksum-mismatch": ProblemType(460, "Checksum mismatch",
                                     "The data does not match its declared checksum."),
    "size-mismatch": ProblemType(400, "Size mismatch",
                                 "The data does not match its declared size."),
    "offset-conflict": ProblemType(409, "Offset conflict",
                                   "Upload-Offset does not match the upload's offset."),
    "upload-locked": ProblemType(423, "Upload busy",
                                 "Another request is appending to this upload."),
    "upload-expired": ProblemType(410, "Upload expired", "The upload expired."),
    "upload-gone": ProblemType(410, "Upload closed", "The upload was terminated or failed."),
    "idempotency-key-reused": ProblemType(422, "Idempotency key reused",
                                          "This Idempotency-Key was used for another request."),
    "tus-version-unsupported": ProblemType(412, "Unsupported tus version",
                                           "This server speaks tus 1.0.0."),
    "server-error": ProblemType(500, "Internal error",
                                "An unexpected error occurred; it has been logged."),
    "tenant-unavailable": ProblemType(503, "Workspace unavailable",
                                      "This workspace is being provisioned; try again shortly."),
    "service-unavailable": ProblemType(503, "Service unavailable",
                                       "A backing service is unavailable."),
}

_DRF_TYPES: list[tuple[type[Exception], str]] = [
    (exceptions.ValidationError, "validation-error"),
    (exceptions.ParseError, "parse-error"),
    (exceptions.NotAuthenticated, "not-authenticated"),
    (exceptions.AuthenticationFailed, "authentication-failed"),
    (exceptions.PermissionDenied, "permission-denied"),
    (exceptions.NotFound, "not-found"),
    (exceptions.MethodNotAllowed, "method-not-allowed"),
    (exceptions.NotAcceptable, "not-acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported-media-type"),
    (exceptions.Throttled, "throttled"),
]


def problem_body(
    request: HttpRequest | None, slug: str, *, detail: str | None = None,
    status: int | None = None, **extra: Any,
) -> dict[str, Any]:
    problem = PROBLEMS[slug]
    body: dict[str, Any] = {
        "type": f"{PROBLEM_BASE}/{slug}",
        "title": problem.title,
        "status": status or problem.status,
        "detail": detail or problem.default_detail,
    }
    if request is not None:
        body["instance"] = request.path
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return body


def problem_response(
    request: HttpRequest | None, slug: str, *, detail: str | None = None, **extra: Any
) -> JsonResponse:
    body = problem_body(request, slug, detail=detail, **extra)
    return JsonResponse(body, status=body["status"], content_type=CONTENT_TYPE)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: every error becomes problem+json with a stable type."""
    request = context.get("request")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        body = problem_body(request, "server-error")
        return Response(body, status=500, content_type=CONTENT_TYPE)
    slug = next((s for cls, s in _DRF_TYPES if isinstance(exc, cls)), None)
    if slug is None:
        slug = "server-error" if response.status_code >= 500 else "validation-error"
    extra: dict[str, Any] = {}
    if isinstance(exc, exceptions.ValidationError):
        extra["errors"] = response.data
        detail = _first_error(response.data)
    else:
        detail = str(getattr(exc, "detail", "")) or None
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        extra["retry_after_seconds"] = int(exc.wait + 0.999)
    response.data = problem_body(request, slug, detail=detail,
                                 status=response.status_code, **extra)
    response.content_type = CONTENT_TYPE
    return response


def _first_error(data: Any, path: str = "") -> str:
    """A one-line summary of the first validation error, e.g. `name: This field...`."""
    if isinstance(data, dict):
        for key, value in data.items():
            label = key if key != "non_field_errors" else ""
            return _first_error(value, f"{path}.{label}".strip(".") if label else path)
    if isinstance(data, list) and data:
        return _first_error(data[0], path)
    return f"{path}: {data}" if path else str(data)


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "json" in request.headers.get("Accept", "")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return problem_response(request, "not-found")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Http404())


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return problem_response(request, "server-error")
    from django.views.defaults import server_error

    return server_error(request)


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return problem_response(request, "permission-denied")
    from django.views.defaults import permission_denied

    return permission_denied(request, exception or PermissionDenied())
