from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from devices.api.v1.views import DeviceCaApi, DeviceViewSet

router = SimpleRouter(trailing_slash=False)
router.register("devices", DeviceViewSet, basename="device")
urlpatterns = [
    path("devices/ca", DeviceCaApi.as_view(), {"kind": "ca"}, name="device-ca"),
    path("devices/ca/crl", DeviceCaApi.as_view(), {"kind": "crl"}, name="device-ca-crl"),
    *router.urls,
]
