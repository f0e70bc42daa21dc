from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from inspections.api.v1.uploads import (
    AcknowledgementKeyApi,
    UploadAcknowledgementApi,
    UploadApi,
    UploadCollectionApi,
)
from inspections.api.v1.views import AssetViewSet, ScanViewSet, SiteViewSet

router = SimpleRouter(trailing_slash=False)
router.register("sites", SiteViewSet, basename="site")
router.register("assets", AssetViewSet, basename="asset")
router.register("scans", ScanViewSet, basename="scan")
urlpatterns = [
    path("uploads", UploadCollectionApi.as_view(), name="upload-list"),
    path("uploads/", UploadCollectionApi.as_view()),
    path("uploads/acknowledgement-key", AcknowledgementKeyApi.as_view(),
         name="upload-acknowledgement-key"),
    path("uploads/<uuid:upload_id>", UploadApi.as_view(), name="upload-detail"),
    path("uploads/<uuid:upload_id>/acknowledgement", UploadAcknowledgementApi.as_view(),
         name="upload-acknowledgement"),
    *router.urls,
]
