"""`sso_required`: a workspace that requires SSO refuses password sessions.

A session records the backend that authenticated it. When the workspace requires SSO,
any session not made by an SSO backend (Django's ModelBackend, allauth's, a forced
login) is ended and refused — on every request, so sessions from before the switch end
too, and in the very request that logged in, so the admin or allauth login form cannot
hand out such a session even once. The one exception is the break-glass owner.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, logout
from django.db import connection
from django.http import HttpRequest, HttpResponse

from accounts.sso.errors import SsoRefusal, sso_error_response
from accounts.sso.policy import password_login_refused

SSO_BACKENDS = frozenset({"accounts.sso.backends.WorkspaceSaml2Backend",
                          "accounts.sso.oidc.WorkspaceOidcBackend"})


def _password_session(request: HttpRequest) -> bool:
    session = getattr(request, "session", None)
    return bool(session is not None and session.get(SESSION_KEY)
                and session.get(BACKEND_SESSION_KEY) not in SSO_BACKENDS)


class SsoRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if connection.schema_name in (None, "public"):
            return self.get_response(request)
        if _password_session(request) and request.user.is_authenticated:
            refused = self._refuse_if_required(request)
            if refused is not None:
                return refused
        before = (request.session.session_key, request.session.get(SESSION_KEY))
        response = self.get_response(request)
        after = (request.session.session_key, request.session.get(SESSION_KEY))
        if after[1] and after != before and _password_session(request):
            refused = self._refuse_if_required(request, logged_in_now=True)
            if refused is not None:
                return refused
        return response

    def _refuse_if_required(self, request: HttpRequest, *,
                            logged_in_now: bool = False) -> HttpResponse | None:
        if not password_login_refused(request.user, path=request.path,
                                      logged_in_now=logged_in_now):
            return None
        logout(request)
        if request.path.startswith("/api/"):
            from d2r.api.problems import problem_response

            return problem_response(request, "permission-denied",
                                    detail=SsoRefusal("sso-required").message)
        return sso_error_response(request, SsoRefusal("sso-required"))
