"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    cache.set("health:ping", "1", timeout=10)
    if cache.get("health:ping") != "1":
        raise RuntimeError("Redis did not return the value just written.")


def _check_storage() -> None:
    client = getattr(default_storage, "connection", None)
    if client is not None:  # S3: the bucket must answer
        client.meta.client.head_bucket(Bucket=default_storage.bucket_name)
    else:
        default_storage.listdir("")


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "redis": _check_redis,
    "object_storage": _check_storage,
}


class HealthApi(APIView):
    """Liveness: the process answers. Touches no backing service."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []

    @extend_schema(responses=inline_serializer("Health", {"status": serializers.CharField()}))
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyApi(APIView):
    """Readiness: every backing service answers; 503 with per-component status if not."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []

    @extend_schema(
        responses={
            200: inline_serializer("Ready", {"status": serializers.CharField(),
                                             "components": serializers.DictField()}),
            503: inline_serializer("NotReady", {"status": serializers.CharField(),
                                                "components": serializers.DictField()}),
        }
    )
    def get(self, request: Request) -> Response:
        components: dict[str, dict[str, object]] = {}
        for name, check in CHECKS.items():
            started = time.perf_counter()
            try:
                check()
            except Exception as exc:  # noqa: BLE001 - any failure makes it not ready
                components[name] = {"status": "down", "error": type(exc).__name__}
            else:
                components[name] = {"status": "up"}
            components[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
        ready = all(c["status"] == "up" for c in components.values())
        return Response({"status": "ready" if ready else "not_ready", "components": components},
                        status=200 if ready else 503)
