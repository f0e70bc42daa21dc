"""URLs of the platform host: the operators' admin, health, API docs."""

from __future__ import annotations

from django.urls import include, path
from django.views.generic import TemplateView

from d2r.admin_sites import platform_site
from d2r.urls_common import api_common, common

handler403 = "d2r.api.problems.handler403"
handler404 = "d2r.api.problems.handler404"
handler500 = "d2r.api.problems.handler500"

urlpatterns = [
    path("", TemplateView.as_view(template_name="platform/home.html"), name="home"),
    path("admin/", platform_site.urls),
    path("api/v1/", include(api_common)),
    *common,
]
