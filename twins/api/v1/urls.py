from __future__ import annotations

from rest_framework.routers import SimpleRouter

from twins.api.v1.views import CadRevisionViewSet

router = SimpleRouter(trailing_slash=False)
router.register("cad-revisions", CadRevisionViewSet, basename="cad-revision")
urlpatterns = router.urls
