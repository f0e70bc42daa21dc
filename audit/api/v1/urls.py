from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from audit.api.v1 import views

router = SimpleRouter(trailing_slash=False)
router.register("audit/entries", views.EntryViewSet, basename="audit-entry")
router.register("audit/tree-heads", views.TreeHeadViewSet, basename="audit-tree-head")
router.register("audit/receipts", views.ReceiptViewSet, basename="audit-receipt")
router.register("audit/exports", views.ExportViewSet, basename="audit-export")

urlpatterns = [
    path("audit/keys", views.LogKeysApi.as_view(), name="audit-keys"),
    path("audit/verify", views.LogVerifyApi.as_view(), name="audit-verify"),
    *router.urls,
]
