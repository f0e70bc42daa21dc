"""API authentication seam: sessions of the request's own workspace.

The identity issue adds JWT, API keys and device credentials; each of them resolves
the workspace through TENANT_CREDENTIAL_RESOLVERS (tenants.middleware).
"""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication


class TenantSessionAuthentication(SessionAuthentication):
    """Session auth whose 401 carries a challenge, so clients get 401 rather than 403."""

    def authenticate_header(self, request):  # type: ignore[no-untyped-def]
        return 'Session realm="d2r"'
