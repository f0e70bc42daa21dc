from __future__ import annotations

from rest_framework.routers import SimpleRouter

from inspections.api.v1.views import AssetViewSet, SiteViewSet

router = SimpleRouter(trailing_slash=False)
router.register("sites", SiteViewSet, basename="site")
router.register("assets", AssetViewSet, basename="asset")
urlpatterns = router.urls
