"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "d2r.settings.local")

import django

django.setup(set_prefix=False)

from d2r.streaming import StreamingASGIHandler  # noqa: E402

# Django's handler, except that tus PATCH bodies stream to the view (d2r.streaming).
django_asgi = StreamingASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from d2r.realtime import TenantWebSocketMiddleware, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi,
        "websocket": AllowedHostsOriginValidator(
            TenantWebSocketMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)
