"""OIDC endpoints of a workspace host (`/oidc/…`); names as mozilla-django-oidc expects."""

from __future__ import annotations

from django.urls import path

from accounts.sso.oidc import OidcCallbackView, OidcLoginView

urlpatterns = [
    path("authenticate/", OidcLoginView.as_view(), name="oidc_authentication_init"),
    path("callback/", OidcCallbackView.as_view(), name="oidc_authentication_callback"),
]
