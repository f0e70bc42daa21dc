"""SAML endpoints of a workspace host (`/saml2/…`); names as djangosaml2 expects them."""

from __future__ import annotations

from django.urls import path

from accounts.sso.saml import SamlAcsView, SamlLoginView, SamlMetadataView

urlpatterns = [
    path("login/", SamlLoginView.as_view(), name="saml2_login"),
    path("acs/", SamlAcsView.as_view(), name="saml2_acs"),
    path("metadata/", SamlMetadataView.as_view(), name="saml2_metadata"),
]
