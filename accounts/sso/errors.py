"""Why an SSO login was refused, and the page that says so."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# reason → (HTTP status, what the person is told)
REASONS: dict[str, tuple[int, str]] = {
    "not-configured": (404, "Single sign-on is not set up for this workspace."),
    "bad-signature": (403, "The login response was not signed by this workspace's "
                           "identity provider."),
    "unsigned": (403, "The login response is not signed; this workspace requires signed "
                      "assertions."),
    "replayed": (403, "This login response was already used."),
    "wrong-audience": (403, "The login response was issued for another service."),
    "wrong-issuer": (403, "The login response comes from an identity provider this "
                          "workspace does not trust."),
    "unsolicited": (403, "The login response does not answer a login started in this "
                         "browser."),
    "expired": (403, "The login response has expired or is not valid yet; please try again."),
    "idp-error": (403, "The identity provider refused or cancelled the login."),
    "invalid-response": (400, "The login response is invalid."),
    "bad-state": (403, "The login response does not belong to a login started in this "
                       "browser (state mismatch)."),
    "bad-nonce": (403, "The identity token was not issued for this login (nonce mismatch)."),
    "bad-token": (403, "The identity token is invalid."),
    "token-exchange-failed": (403, "The identity provider did not accept the login code."),
    "provider-unavailable": (502, "The identity provider could not be reached."),
    "no-identity": (403, "The identity provider sent no usable identifier for you."),
    "no-role": (403, "Your account at the identity provider grants no role in this "
                     "workspace. Ask your administrator for access."),
    "user-inactive": (403, "Your account in this workspace is deactivated."),
    "identity-conflict": (403, "Several accounts of this workspace match you; ask your "
                               "administrator."),
    "sso-required": (403, "This workspace requires signing in through its identity "
                          "provider."),
}


class SsoRefusal(PermissionDenied):
    """An SSO login refused for a stated reason (a key of REASONS).

    A PermissionDenied, so that `django.contrib.auth.authenticate` stops at the backend
    that raised it instead of trying the others.
    """

    def __init__(self, reason: str, log_detail: str = "", *, actor: str = "") -> None:
        super().__init__(reason)
        self.reason = reason if reason in REASONS else "invalid-response"
        self.log_detail = log_detail[:500]
        self.actor = actor

    @property
    def status(self) -> int:
        return REASONS[self.reason][0]

    @property
    def message(self) -> str:
        return REASONS[self.reason][1]


def sso_error_response(request: HttpRequest, refusal: SsoRefusal) -> HttpResponse:
    """A plain HTML page (browser endpoints) stating why the login was refused, with the
    workspace's SSO sign-in links."""
    from accounts.sso.selectors import sso_policy_get

    policy = sso_policy_get()
    links = [(url, label) for enabled, url, label in (
        (policy.saml_enabled, "/saml2/login/", "Sign in with your company account (SAML)"),
        (policy.oidc_enabled, "/oidc/authenticate/", "Sign in with your company account "
                                                     "(OpenID Connect)"),
    ) if enabled and refusal.reason != "not-configured"]
    return render(request, "accounts/sso_error.html",
                  {"reason": refusal.reason, "message": refusal.message, "links": links,
                   "tenant": getattr(request, "tenant", None)},
                  status=refusal.status)
