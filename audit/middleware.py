"""Context for django-pghistory events: who, through which request.

Every row change of a tracked model (pghistory triggers) carries this context: the
user (session, access token or device), the path and the request id, which is also
the `request_id` of the JSON log lines and audit entries written in that request.
pghistory's own middleware swaps the request class to catch users set later by DRF;
ours does not (the ingestion path uses a streaming request class of its own), and
reads the credential principal that the tenants middleware already verified.
The same principal is the actor of the configuration entries written by
``audit.tracking`` during the request.
"""

from __future__ import annotations

from collections.abc import Callable

import pghistory
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django_tenants.utils import get_public_schema_name

from audit import tracking

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class HistoryContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in WRITE_METHODS or connection.schema_name in (
            None, get_public_schema_name()
        ):
            return self.get_response(request)
        principal_user = getattr(request, "d2r_principal_user", None)
        user = principal_user if principal_user is not None else getattr(request, "user", None)
        signed_in = user is not None and getattr(user, "is_authenticated", False)
        with pghistory.context(
            user=getattr(user, "pk", None), actor=str(user) if user is not None else None,
            url=request.path, request_id=getattr(request, "request_id", None),
        ), tracking.acting_as(str(user) if signed_in else "anonymous"):
            return self.get_response(request)
