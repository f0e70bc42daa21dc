"""Light SSO helpers shared by the admin, OIDC and SAML (no SAML library imported).

pysaml2 and xmlschema cost ~25 MB per process; they load only when a SAML endpoint or
login is actually used (see accounts/sso/backends.py and urls_saml.py).
"""

from __future__ import annotations

from django.http import HttpRequest

from accounts.models import SsoConfiguration
from accounts.sso.selectors import sso_configuration_get

_UNSET = object()


def workspace_sso_configuration(request: HttpRequest) -> SsoConfiguration | None:
    """The workspace's SSO row, read once per request."""
    cached = getattr(request, "_sso_configuration", _UNSET)
    if cached is _UNSET:
        cached = sso_configuration_get()
        request._sso_configuration = cached  # type: ignore[attr-defined]
    return cached  # type: ignore[return-value]


def sp_entity_id(host: str) -> str:
    """The workspace's SAML entity id: stable per host, whatever scheme or port served it."""
    return f"https://{host}/saml2/metadata/"
