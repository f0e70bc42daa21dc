"""How the API's authentication appears in the OpenAPI document (Swagger "Authorize")."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class CredentialScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.CredentialAuthentication"
    name = ["bearerAuth", "apiKeyAuth"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
             "description": "An access token from /api/v1/auth/token, or a device-signed JWT."},
            {"type": "apiKey", "in": "header", "name": "Authorization",
             "description": "`Api-Key d2rk.<workspace>.<prefix>.<secret>`"},
        ]


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.TenantSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
