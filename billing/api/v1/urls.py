from __future__ import annotations

from django.urls import path

from billing.api.v1.views import UsageApi

urlpatterns = [path("usage", UsageApi.as_view(), name="usage")]
