"""URLs of a workspace host (`<slug>.<domain>`)."""

from __future__ import annotations

from django.urls import include, path

from d2r.admin_sites import tenant_site
from d2r.urls_common import api_common, common

handler403 = "d2r.api.problems.handler403"
handler404 = "d2r.api.problems.handler404"
handler500 = "d2r.api.problems.handler500"

api_v1 = [
    *api_common,
    path("", include("accounts.api.v1.urls")),
    path("", include("devices.api.v1.urls")),
    path("", include("billing.api.v1.urls")),
    path("", include("inspections.api.v1.urls")),
    path("", include("audit.api.v1.urls")),
    path("", include("twins.api.v1.urls")),
    path("", include("quality.api.v1.urls")),
]

urlpatterns = [
    path("admin/", tenant_site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include(api_v1)),
    path("saml2/", include("accounts.sso.urls_saml")),
    path("oidc/", include("accounts.sso.urls_oidc")),
    *common,
]
