from __future__ import annotations

from rest_framework.routers import SimpleRouter

from devices.api.v1.views import DeviceViewSet

router = SimpleRouter(trailing_slash=False)
router.register("devices", DeviceViewSet, basename="device")
urlpatterns = router.urls
