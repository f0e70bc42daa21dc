"""Rate limits: per caller, from the plan, with headers; they trip and recover.

(Which role may call which endpoint: tests/accounts/test_endpoint_matrix.py.)
"""

from __future__ import annotations

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.django_db

def test_rate_limits_trip_with_headers_and_recover(settings) -> None:  # type: ignore[no-untyped-def]
    import time

    from django.test import Client

    settings.AUTH_RATE_PER_MINUTE = 3
    settings.RATE_LIMIT_WINDOW_SECONDS = 2
    cache.clear()
    client = Client(HTTP_HOST="alpha.localhost")

    def attempt():  # type: ignore[no-untyped-def]
        return client.post("/api/v1/auth/token/revoke", {"refresh": "x"},
                           content_type="application/json")

    time.sleep(2 - time.time() % 2)  # start at the beginning of a window
    statuses = [attempt() for _ in range(4)]
    assert [r.status_code for r in statuses] == [204, 204, 204, 429]
    assert statuses[0]["RateLimit-Limit"] == "3"
    assert [r["RateLimit-Remaining"] for r in statuses] == ["2", "1", "0", "0"]
    throttled = statuses[3]
    assert throttled["Content-Type"] == "application/problem+json"
    assert throttled.json()["type"].endswith("/throttled")
    assert 1 <= int(throttled["Retry-After"]) <= 3
    time.sleep(int(throttled["Retry-After"]))
    assert attempt().status_code == 204  # recovered in the next window


def test_plan_limit_applies_per_api_key(settings) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client
    from django_tenants.utils import schema_context

    from accounts.credentials import api_key_issue
    from tenants.models import Plan

    cache.clear()
    Plan.objects.filter(code="professional").update(api_requests_per_minute=2)
    try:
        with schema_context("alpha"):
            first = api_key_issue(schema="alpha", name="a", role="viewer").key
            second = api_key_issue(schema="alpha", name="b", role="viewer").key
        client = Client(HTTP_HOST="alpha.localhost")
        codes = [client.get("/api/v1/sites", HTTP_AUTHORIZATION=f"Api-Key {first}").status_code
                 for _ in range(3)]
        assert codes[:2] == [200, 200] and codes[2] == 429
        other = client.get("/api/v1/sites", HTTP_AUTHORIZATION=f"Api-Key {second}")
        assert other.status_code == 200  # each key has its own bucket
    finally:
        from django.db import connection

        connection.set_schema_to_public()  # the requests left the connection in alpha
        Plan.objects.filter(code="professional").update(api_requests_per_minute=3000)
