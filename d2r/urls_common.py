"""URL patterns served on every host (platform and workspaces)."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from accounts.api.v1.views import JwksApi
from d2r.api.health import HealthApi, ReadyApi

api_common = [
    path("health", HealthApi.as_view(), name="health"),
    path("ready", ReadyApi.as_view(), name="ready"),
    path("auth/jwks", JwksApi.as_view(), name="jwks"),
    path("schema/", SpectacularAPIView.as_view(urlconf="d2r.urls_tenant"), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

common = [
    path("", include("django_prometheus.urls")),  # /metrics
]
