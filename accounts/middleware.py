"""Enforce the workspace's MFA policy on browser sessions."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

# Paths a signed-in user without an authenticator may still reach: setting one up,
# logging out, static files.
ALLOWED_PREFIXES = ("/accounts/", "/static/", "/api/v1/health", "/api/v1/ready")


class MfaRequiredMiddleware:
    """When the policy requires MFA, a session without an authenticator must set one up."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            connection.schema_name not in (None, "public")
            and request.user.is_authenticated
            and not request.path.startswith(ALLOWED_PREFIXES)
            and not request.path.startswith("/api/")  # API callers: see the token endpoint
        ):
            from django.contrib.auth import BACKEND_SESSION_KEY

            from accounts.mfa import user_needs_mfa_setup
            from accounts.sso.middleware import SSO_BACKENDS

            # SSO sessions: the identity provider enforces its own MFA.
            via_sso = request.session.get(BACKEND_SESSION_KEY) in SSO_BACKENDS
            if not via_sso and user_needs_mfa_setup(request.user):
                return HttpResponseRedirect(reverse("mfa_activate_totp"))
        return self.get_response(request)
