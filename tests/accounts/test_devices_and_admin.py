"""Device registry lifecycle through the API, and the admin by role."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import ApiKey
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_device_lifecycle_and_its_key() -> None:
    admin = make_user("alpha", role="admin", name="fleet")
    created = admin.client.post("/api/v1/devices", {"serial": "EDGE-1", "model": "D2R-Edge",
                                                    "state": "active"},
                                content_type="application/json")
    assert created.status_code == 201
    device = created.json()
    assert device["state"] == "provisioned"  # state cannot be mass-assigned
    key = admin.client.post(f"/api/v1/devices/{device['id']}/api-keys").json()["key"]
    as_device = Client(HTTP_HOST="alpha.localhost", HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert as_device.get("/api/v1/me").status_code == 403  # provisioned: refused
    assert admin.client.post(f"/api/v1/devices/{device['id']}/activate").status_code == 200
    me = as_device.get("/api/v1/me").json()
    assert me["name"] == "device:EDGE-1" and me["role"] == "operator"
    assert as_device.post("/api/v1/sites", {"name": "x"},
                          content_type="application/json").status_code == 403
    assert admin.client.post(f"/api/v1/devices/{device['id']}/decommission").json()[
        "state"] == "decommissioned"
    refused = as_device.get("/api/v1/me")
    assert refused.status_code == 403 and "decommissioned" in refused.json()["detail"]
    again = admin.client.post(f"/api/v1/devices/{device['id']}/activate")
    assert again.status_code == 400 and "cannot become" in again.json()["detail"]
    with schema_context("alpha"):
        assert ApiKey.objects.get(prefix=key.split(".")[2]).revoked_at is not None


def test_device_public_key_must_be_a_real_key() -> None:
    admin = make_user("alpha", role="admin", name="fleet2")
    response = admin.client.post("/api/v1/devices", {"serial": "E2", "model": "m",
                                                     "public_key_pem": "not a key"},
                                 content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("public_key_pem:")


def test_create_api_key_command_prints_the_key_once() -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", tenant="alpha", role="viewer", name="ci", stdout=out,
                 stderr=err)
    key = out.getvalue().strip()
    assert key.startswith("d2rk.alpha.")
    assert "not shown again" in err.getvalue()
    response = Client(HTTP_HOST="api.localhost").get("/api/v1/me",
                                                     HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert response.json()["role"] == "viewer"


@pytest.mark.parametrize(("role", "sees_sites", "sees_devices", "sees_users"), [
    ("owner", True, True, True),
    ("qc_manager", True, False, False),
    ("finance", False, False, False),
    ("viewer", True, False, False),
])
def test_admin_shows_each_role_only_its_models(role: str, sees_sites: bool, sees_devices: bool,
                                               sees_users: bool) -> None:
    user = make_user("alpha", role=role, name=f"adm-{role}")
    index = user.client.get("/admin/")
    assert index.status_code == 200
    assert (b"/admin/inspections/site/" in index.content) is sees_sites
    assert (b"/admin/devices/device/" in index.content) is sees_devices
    assert (b"/admin/auth/user/" in index.content) is sees_users
    expected = 200 if sees_sites else 403
    assert user.client.get("/admin/inspections/site/").status_code == expected


def test_admin_refuses_users_without_a_role() -> None:
    nobody = make_user("alpha", name="norole")
    assert nobody.client.get("/admin/").status_code == 302  # to the login page
