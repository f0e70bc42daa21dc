"""Tenant isolation on the paths Django's middleware does not cover: Celery and Channels."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from channels.layers import get_channel_layer
from channels.testing.websocket import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context

from d2r.asgi import application
from d2r.celery import app as celery_app
from d2r.realtime import tenant_group
from tenants.tasks import current_schema_task
from tests.conftest import TenantUser, make_user


@pytest.fixture(scope="module")
def celery_worker(django_db_setup: None, django_db_blocker: object) -> Iterator[None]:
    from celery.contrib.testing.worker import start_worker

    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        with start_worker(celery_app, perform_ping_check=False, pool="solo",
                          queues=["default"], shutdown_timeout=10):
            yield


@pytest.mark.django_db
def test_task_enqueued_for_a_tenant_runs_in_that_tenant(celery_worker: None) -> None:
    database = connection.settings_dict["NAME"]
    with schema_context("alpha"):
        result = current_schema_task.delay()
    assert result.get(timeout=30) == {
        "schema": "alpha", "role": f"{database}_t_alpha", "search_path": "alpha, public",
    }
    with schema_context("beta"):
        beta = current_schema_task.delay().get(timeout=30)
    assert beta["role"] == f"{database}_t_beta"
    # The worker resets its connection after each task: a public task is public again.
    public = current_schema_task.delay().get(timeout=30)
    assert public["schema"] == "public"
    assert public["role"] == f"{database}_platform"


def _cookie_header(user: TenantUser) -> list[tuple[bytes, bytes]]:
    cookie = user.client.cookies[settings.SESSION_COOKIE_NAME].value
    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())]


async def _connect(host: str, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        application, "/ws/v1/events/",
        headers=[(b"host", host.encode()), (b"origin", f"http://{host}".encode()), *headers],
    )
    return communicator


@pytest.fixture
def committed_alpha_user(django_db_setup: None, django_db_blocker: object) -> Iterator[TenantUser]:
    """A user and session committed for real: the consumer reads them on its own connection."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        user = make_user("alpha", name="ws")
        yield user
        with schema_context("alpha"):
            from django.contrib.sessions.models import Session

            Session.objects.all().delete()
            type(user.user).objects.filter(pk=user.user.pk).delete()  # type: ignore[attr-defined]


def test_websocket_joins_only_its_own_tenants_group(committed_alpha_user: TenantUser) -> None:
    headers = _cookie_header(committed_alpha_user)

    async def scenario() -> None:
        communicator = await _connect("alpha.localhost", headers)
        connected, _ = await communicator.connect()
        assert connected
        assert await communicator.receive_json_from() == {
            "kind": "hello", "data": {"workspace": "alpha"}}
        layer = get_channel_layer()
        await layer.group_send(tenant_group("beta", "events"),
                               {"type": "tenant.event", "event": {"kind": "x", "data": {}}})
        assert await communicator.receive_nothing(timeout=0.5)
        await layer.group_send(tenant_group("alpha", "events"),
                               {"type": "tenant.event",
                                "event": {"kind": "scan.progress", "data": {"pct": 40}}})
        assert await communicator.receive_json_from(timeout=5) == {
            "kind": "scan.progress", "data": {"pct": 40}}
        await communicator.disconnect()

        # alpha's session cookie presented on beta's host: refused.
        foreign = await _connect("beta.localhost", headers)
        connected, code = await foreign.connect()
        assert not connected and code == 4401
        anonymous = await _connect("alpha.localhost", [])
        connected, code = await anonymous.connect()
        assert not connected and code == 4401
        unknown = await _connect("nobody.localhost", headers)
        connected, code = await unknown.connect()
        assert not connected and code == 4404

    asyncio.run(scenario())


def test_group_names_carry_the_tenant() -> None:
    assert tenant_group("alpha", "events") == "t.alpha.events"
    assert tenant_group("alpha", "events") != tenant_group("beta", "events")
    with pytest.raises(ValueError):
        tenant_group("", "events")
    with pytest.raises(ValueError):
        tenant_group("alpha.beta", "events")
