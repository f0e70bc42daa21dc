"""DRF authentication from the credential the tenants middleware already verified."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.request import Request


class CredentialAuthentication(BaseAuthentication):
    """API key, user access token or device token (see accounts.credentials)."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        principal = getattr(request._request, "d2r_principal", None)
        if principal is None:
            return None
        return request._request.d2r_principal_user, principal

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="d2r", Api-Key realm="d2r"'


class TenantSessionAuthentication(SessionAuthentication):
    """Browser sessions (CSRF enforced) of the request's own workspace."""

    def authenticate_header(self, request: Request) -> str:
        return 'Session realm="d2r"'
