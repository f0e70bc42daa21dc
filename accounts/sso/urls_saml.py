"""SAML endpoints of a workspace host (`/saml2/…`); names as djangosaml2 expects them.

The views load the SAML stack on first use, not when the URLs are read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def _lazy(name: str) -> Callable[..., HttpResponse]:
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from accounts.sso import saml

        return getattr(saml, name).as_view()(request, *args, **kwargs)  # type: ignore[no-any-return]

    view.__name__ = name
    return view


urlpatterns = [
    path("login/", _lazy("SamlLoginView"), name="saml2_login"),
    # The IdP posts the response cross-site; the response itself is signed and checked.
    path("acs/", csrf_exempt(_lazy("SamlAcsView")), name="saml2_acs"),
    path("metadata/", _lazy("SamlMetadataView"), name="saml2_metadata"),
]
