from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts.api.v1 import views

router = SimpleRouter(trailing_slash=False)
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("auth/token", views.TokenApi.as_view(), name="auth-token"),
    path("auth/token/refresh", views.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/token/revoke", views.TokenRevokeApi.as_view(), name="auth-token-revoke"),
    path("auth/sessions/revoke-all", views.RevokeAllSessionsApi.as_view(), name="auth-revoke-all"),
    path("me", views.MeApi.as_view(), name="me"),
    *router.urls,
]
