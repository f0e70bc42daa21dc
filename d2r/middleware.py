"""Cross-cutting middleware: request ids and the problem+json error envelope."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse

from d2r.api.problems import is_api_request, problem_response
from d2r.logging import reset_request_id, set_request_id

logger = logging.getLogger("d2r.request")
REQUEST_ID_HEADER = "X-Request-ID"
_HANDLED_BY_DJANGO = (Http404, PermissionDenied, SuspiciousOperation)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Accept a well-formed `X-Request-ID` or generate one; echo it; log with it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            logger.info("request", extra={"method": request.method, "path": request.path,
                                          "status": response.status_code})
            return response
        finally:
            reset_request_id(token)


class ProblemDetailsMiddleware:
    """Turn an unhandled exception on an API path into problem+json, not an HTML page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api_request(request) or isinstance(exception, _HANDLED_BY_DJANGO):
            return None
        logger.exception("unhandled error", exc_info=exception)
        return problem_response(request, "server-error")
