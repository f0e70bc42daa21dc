"""Authentication events land in the workspace's audit log, in the same transaction."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from audit.selectors import entry_list
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def _actions(schema: str) -> list[str]:
    with schema_context(schema):
        return list(entry_list().filter(action__startswith="auth.")
                    .values_list("action", flat=True))


def test_login_failure_token_issue_and_key_events_are_chained() -> None:
    user = make_user("alpha", role="admin", name="events")
    client = Client(HTTP_HOST="alpha.localhost")
    client.post("/api/v1/auth/token", {"username": "events@alpha.test", "password": "nope"},
                content_type="application/json")
    pair = client.post("/api/v1/auth/token", {"username": "events@alpha.test",
                                              "password": "a-long-test-password"},
                       content_type="application/json").json()
    client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]},
                content_type="application/json")
    key = user.client.post("/api/v1/api-keys", {"name": "k", "role": "viewer"},
                           content_type="application/json").json()
    user.client.post(f"/api/v1/api-keys/{key['id']}/revoke")
    actions = _actions("alpha")
    for expected in ("auth.login.failure", "auth.token.issue", "auth.token.refresh",
                     "auth.api_key.create", "auth.api_key.revoke"):
        assert expected in actions
    assert _actions("beta") == []  # never in another workspace's log
