"""Configuration changes and deletions are log entries (audit.tracking, issue 6).

Each change goes through the real API or admin where one exists: exactly one entry,
with the right action, actor and old → new values; secrets never reach the log; a
rolled-back change leaves nothing; the chain still verifies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import ApiKey, Membership, MembershipEvent, SsoConfiguration
from audit import selectors, services, tracking
from audit.models import Entry
from devices.models import DeviceCA
from inspections.models import Asset, AssetEvent, Scan, Site
from tests.conftest import TenantUser, make_user

pytestmark = pytest.mark.django_db
README = Path(__file__).resolve().parents[2] / "README.md"


def _next_seq(schema: str = "alpha") -> int:
    with schema_context(schema):
        return Entry.objects.count()


def _entries(since: int, schema: str = "alpha") -> list[Entry]:
    with schema_context(schema):
        return list(Entry.objects.filter(seq__gte=since).order_by("seq"))


def _one(since: int, action: str, schema: str = "alpha") -> tuple[Entry, dict[str, Any]]:
    """The request wrote exactly one entry, with this action; return it and its payload."""
    entries = _entries(since, schema)
    assert [e.action for e in entries] == [action]
    return entries[0], json.loads(entries[0].payload)


def _chain_verifies(schema: str = "alpha") -> None:
    with schema_context(schema):
        services.tree_head_issue()  # refuses (LogIntegrityError) to sign a broken log
        assert selectors.log_verify().ok


@pytest.fixture
def owner(db: None) -> TenantUser:
    return make_user("alpha", superuser=True, name="boss")


def test_sites_and_assets_through_the_api_one_entry_per_change_with_old_and_new() -> None:
    qc = make_user("alpha", role="qc_manager", name="planner")

    start = _next_seq()
    site = qc.client.post(
        "/api/v1/sites", {"name": "Pune", "location": "MH"}, content_type="application/json"
    ).json()
    entry, payload = _one(start, "config.site.created")
    assert (entry.actor, entry.object_type, entry.object_id) == (
        "planner@alpha.test",
        "inspections.Site",
        str(site["id"]),
    )
    assert payload["changes"]["name"] == {"old": None, "new": "Pune"}
    assert payload["object"] == "Pune"

    start = _next_seq()
    asset = qc.client.post(
        "/api/v1/assets",
        {"site": site["id"], "tag": "P-1", "name": "Pump", "kind": "machine"},
        content_type="application/json",
    ).json()
    entry, payload = _one(start, "config.asset.created")
    with schema_context("alpha"):
        insert = AssetEvent.objects.get(pgh_obj_id=asset["id"], pgh_label="insert")
    assert payload["history_event"] == {"model": "inspections.AssetEvent", "id": insert.pgh_id}

    start = _next_seq()
    response = qc.client.patch(
        f"/api/v1/assets/{asset['id']}", {"name": "Pump (rebuilt)"}, content_type="application/json"
    )
    assert response.status_code == 200
    entry, payload = _one(start, "config.asset.updated")
    assert payload["changes"] == {"name": {"old": "Pump", "new": "Pump (rebuilt)"}}
    with schema_context("alpha"):
        update = AssetEvent.objects.get(pgh_obj_id=asset["id"], pgh_label="update")
    assert payload["history_event"]["id"] == update.pgh_id  # the row's own history

    start = _next_seq()  # the same values again: nothing changed, nothing logged
    qc.client.patch(
        f"/api/v1/assets/{asset['id']}", {"name": "Pump (rebuilt)"}, content_type="application/json"
    )
    assert _entries(start) == []

    start = _next_seq()
    assert qc.client.delete(f"/api/v1/assets/{asset['id']}").status_code == 204
    entry, payload = _one(start, "config.asset.deleted")
    assert payload["changes"]["tag"] == {"old": "P-1", "new": None}
    assert payload["history_event"]["id"] == update.pgh_id  # its last recorded state
    assert _entries(0, "beta") == []  # another workspace's log never sees it
    _chain_verifies()


def test_an_api_key_is_the_actor_of_what_it_changes(owner: TenantUser) -> None:
    key = owner.client.post(
        "/api/v1/api-keys", {"name": "erp", "role": "admin"}, content_type="application/json"
    ).json()
    client = Client(HTTP_HOST="alpha.localhost", HTTP_AUTHORIZATION=f"Api-Key {key['key']}")
    start = _next_seq()
    assert (
        client.post(
            "/api/v1/sites", {"name": "Chakan"}, content_type="application/json"
        ).status_code
        == 201
    )
    entry, _ = _one(start, "config.site.created")
    assert entry.actor == f"api-key:{key['prefix']}"


def test_memberships_in_the_admin_created_role_changed_deleted(owner: TenantUser) -> None:
    person = make_user("alpha", name="newhire")  # a user without a role yet
    person_id = person.user.pk  # type: ignore[attr-defined]

    start = _next_seq()
    added = owner.client.post(
        "/admin/accounts/membership/add/", {"user": person_id, "role": "viewer"}
    )
    assert added.status_code == 302, added.content
    entry, payload = _one(start, "config.membership.created")
    assert entry.actor == "boss@alpha.test"
    assert payload["changes"]["role"] == {"old": None, "new": "viewer"}
    assert payload["changes"]["user"] == {"old": None, "new": person_id}
    assert payload["object"] == "newhire@alpha.test (viewer)"
    with schema_context("alpha"):
        membership = Membership.objects.get(user_id=person_id)

    start = _next_seq()
    changed = owner.client.post(
        f"/admin/accounts/membership/{membership.pk}/change/",
        {"user": person_id, "role": "qc_manager"},
    )
    assert changed.status_code == 302, changed.content
    entry, payload = _one(start, "config.membership.updated")
    assert payload["changes"] == {"role": {"old": "viewer", "new": "qc_manager"}}
    with schema_context("alpha"):
        event = MembershipEvent.objects.filter(pgh_obj_id=membership.pk).latest("pgh_id")
    assert payload["history_event"] == {"model": "accounts.MembershipEvent", "id": event.pgh_id}
    assert event.role == "qc_manager"

    start = _next_seq()
    deleted = owner.client.post(
        f"/admin/accounts/membership/{membership.pk}/delete/", {"post": "yes"}
    )
    assert deleted.status_code == 302, deleted.content
    entry, payload = _one(start, "config.membership.deleted")
    assert (entry.object_id, payload["changes"]["role"]) == (
        str(membership.pk),
        {"old": "qc_manager", "new": None},
    )
    _chain_verifies()


def test_security_policy_in_the_admin_is_logged_but_its_default_row_is_not(
    owner: TenantUser,
) -> None:
    start = _next_seq()
    assert owner.client.get("/admin/accounts/workspacepolicy/").status_code == 200
    assert _entries(start) == []  # the default row appears on first read: no change
    changed = owner.client.post("/admin/accounts/workspacepolicy/1/change/", {"mfa_required": "on"})
    assert changed.status_code == 302, changed.content
    entry, payload = _one(start, "config.security_policy.updated")
    assert entry.actor == "boss@alpha.test"
    assert payload["changes"] == {"mfa_required": {"old": False, "new": True}}
    assert payload["history_event"]["model"] == "accounts.WorkspacePolicyEvent"


def test_an_api_key_is_one_auth_entry_with_its_scopes_and_never_its_secret(
    owner: TenantUser,
) -> None:
    start = _next_seq()
    created = owner.client.post(
        "/api/v1/api-keys",
        {"name": "ci", "role": "operator", "scopes": ["ingest"]},
        content_type="application/json",
    ).json()
    entry, payload = _one(start, "auth.api_key.create")
    assert entry.actor == "boss@alpha.test"
    [row] = payload["rows"]
    assert row["action"] == "config.api_key.created"
    assert row["object_id"] == str(created["id"])
    changes = row["changes"]
    assert changes["scopes"] == {"old": None, "new": ["ingest"]}
    assert changes["role"]["new"] == "operator" and changes["name"]["new"] == "ci"
    assert "key_hash" not in changes and "last_used_at" not in changes
    assert row["history_event"]["model"] == "accounts.ApiKeyEvent"

    start = _next_seq()
    owner.client.post(f"/api/v1/api-keys/{created['id']}/revoke")
    entry, payload = _one(start, "auth.api_key.revoke")
    [row] = payload["rows"]
    assert row["action"] == "config.api_key.updated"
    assert list(row["changes"]) == ["revoked_at"]
    assert row["changes"]["revoked_at"]["old"] is None

    start = _next_seq()  # revoking again changes nothing; the attempt is still an event
    owner.client.post(f"/api/v1/api-keys/{created['id']}/revoke")
    assert _one(start, "auth.api_key.revoke")[1]["rows"] == []

    with schema_context("alpha"):
        key_hash = ApiKey.objects.get(pk=created["id"]).key_hash
        logged = "\n".join(Entry.objects.values_list("payload", flat=True))
    secret = created["key"].rsplit(".", 1)[1]
    assert created["key"] not in logged and secret not in logged and key_hash not in logged
    _chain_verifies()


def test_the_create_api_key_command_is_one_entry_by_manage_py() -> None:
    start = _next_seq()
    call_command(
        "create_api_key",
        tenant="alpha",
        role="viewer",
        name="cron",
        stdout=open("/dev/null", "w"),
        stderr=open("/dev/null", "w"),
    )
    entry, payload = _one(start, "auth.api_key.create")
    assert entry.actor == "manage.py"
    assert payload["rows"][0]["changes"]["name"]["new"] == "cron"


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_a_device_lifecycle_is_one_entry_per_step_and_decommission_lists_revoked_keys() -> None:
    fleet = make_user("alpha", role="admin", name="fleet")

    start = _next_seq()
    device = fleet.client.post(
        "/api/v1/devices", {"serial": "EDGE-9", "model": "Edge"}, content_type="application/json"
    ).json()
    entry, payload = _one(start, "auth.device.register")
    assert entry.actor == "fleet@alpha.test"
    [row] = payload["rows"]
    assert row["action"] == "config.device.created"
    assert row["changes"]["serial"] == {"old": None, "new": "EDGE-9"}

    start = _next_seq()
    key = fleet.client.post(f"/api/v1/devices/{device['id']}/api-keys").json()
    _, payload = _one(start, "auth.api_key.create")
    assert payload["rows"][0]["changes"]["device"]["new"] == device["id"]

    start = _next_seq()
    fleet.client.post(f"/api/v1/devices/{device['id']}/activate")
    _, payload = _one(start, "auth.device.active")
    assert [r["changes"] for r in payload["rows"]] == [
        {"state": {"old": "provisioned", "new": "active"}}
    ]

    start = _next_seq()
    issued = fleet.client.post(
        f"/api/v1/devices/{device['id']}/certificates",
        {"csr": _csr()},
        content_type="application/json",
    ).json()
    entries = _entries(start)  # the workspace CA is made on first use, then the certificate
    assert [e.action for e in entries] == [
        "config.device_ca.created",
        "config.device_certificate.created",
    ]
    ca_changes = json.loads(entries[0].payload)["changes"]
    assert ca_changes["private_key_encrypted"]["new"].startswith("[redacted sha256:")
    cert_changes = json.loads(entries[1].payload)["changes"]
    assert cert_changes["serial_number"]["new"] == issued["serial_number"]
    assert cert_changes["certificate_pem"]["new"] == (
        f"sha256:{tracking.fingerprint(issued['certificate_pem'])}"
    )
    with schema_context("alpha"):
        private = bytes(DeviceCA.objects.get().private_key_encrypted)
    assert private.hex() not in entries[0].payload and "PRIVATE" not in entries[0].payload

    start = _next_seq()
    fleet.client.post(f"/api/v1/devices/{device['id']}/certificates/{issued['id']}/revoke")
    entry, payload = _one(start, "config.device_certificate.updated")
    assert entry.actor == "fleet@alpha.test" and list(payload["changes"]) == ["revoked_at"]

    start = _next_seq()
    fleet.client.post(f"/api/v1/devices/{device['id']}/decommission")
    _, payload = _one(start, "auth.device.decommissioned")
    assert [(r["action"], list(r["changes"])) for r in payload["rows"]] == [
        ("config.device.updated", ["state"]),
        ("config.api_key.updated", ["revoked_at"]),
    ]
    assert payload["rows"][1]["object_id"] == str(_key_id(key["prefix"]))
    _chain_verifies()


def _key_id(prefix: str) -> int:
    with schema_context("alpha"):
        return ApiKey.objects.get(prefix=prefix).pk


def test_devices_edited_and_deleted_in_the_admin(owner: TenantUser) -> None:
    device = owner.client.post(
        "/api/v1/devices", {"serial": "EDGE-A", "model": "Edge"}, content_type="application/json"
    ).json()
    key = owner.client.post(f"/api/v1/devices/{device['id']}/api-keys").json()
    key_id = _key_id(key["prefix"])

    start = _next_seq()
    changed = owner.client.post(
        f"/admin/devices/device/{device['id']}/change/",
        {"serial": "EDGE-A", "model": "Edge", "firmware": "2.5.0", "public_key_pem": ""},
    )
    assert changed.status_code == 302, changed.content
    _, payload = _one(start, "config.device.updated")
    assert payload["changes"] == {"firmware": {"old": "", "new": "2.5.0"}}

    start = _next_seq()
    deleted = owner.client.post(f"/admin/devices/device/{device['id']}/delete/", {"post": "yes"})
    assert deleted.status_code == 302, deleted.content
    actions = [(e.action, e.object_id) for e in _entries(start)]
    assert sorted(actions) == sorted(
        [("config.api_key.deleted", str(key_id)), ("config.device.deleted", str(device["id"]))]
    )
    assert all(e.actor == "boss@alpha.test" for e in _entries(start))
    _chain_verifies()


def test_sso_in_the_admin_is_one_entry_with_the_client_secret_redacted(owner: TenantUser) -> None:
    form = {
        "default_role": "viewer",
        "saml_email_attribute": "mail",
        "saml_role_attribute": "groups",
        "saml_role_map": "[]",
        "saml_want_assertions_signed": "on",
        "oidc_enabled": "on",
        "oidc_issuer": "https://idp.example.test",
        "oidc_client_id": "alpha-d2r",
        "oidc_scopes": "openid email profile",
        "oidc_use_pkce": "on",
        "oidc_role_claim": "groups",
        "oidc_role_map": '[["d2r-admins", "admin"]]',
        "oidc_client_secret": "sup3r-s3cret-client-value",
    }
    start = _next_seq()
    added = owner.client.post("/admin/accounts/ssoconfiguration/add/", form)
    assert added.status_code == 302, added.content
    entry, payload = _one(start, "auth.sso.configure")
    assert entry.actor == "boss@alpha.test"
    [row] = payload["rows"]
    assert row["action"] == "config.sso.created"
    changes = row["changes"]
    assert changes["oidc_client_id"]["new"] == "alpha-d2r"
    assert changes["oidc_role_map"]["new"] == [["d2r-admins", "admin"]]
    first_fingerprint = changes["oidc_client_secret_encrypted"]["new"]
    assert first_fingerprint.startswith("[redacted sha256:")

    start = _next_seq()
    owner.client.post(
        "/admin/accounts/ssoconfiguration/1/change/",
        {**form, "oidc_client_secret": "", "default_role": "operator"},
    )
    _, payload = _one(start, "auth.sso.configure")
    assert payload["rows"][0]["changes"] == {"default_role": {"old": "viewer", "new": "operator"}}

    start = _next_seq()
    owner.client.post(
        "/admin/accounts/ssoconfiguration/1/change/",
        {**form, "oidc_client_secret": "rotated-s3cret-value"},
    )
    _, payload = _one(start, "auth.sso.configure")
    rotated = payload["rows"][0]["changes"]["oidc_client_secret_encrypted"]
    assert rotated["old"] == first_fingerprint and rotated["new"] != first_fingerprint

    with schema_context("alpha"):
        stored = SsoConfiguration.objects.get(pk=1).oidc_client_secret_encrypted
    start = _next_seq()
    deleted = owner.client.post("/admin/accounts/ssoconfiguration/1/delete/", {"post": "yes"})
    assert deleted.status_code == 302, deleted.content
    _, payload = _one(start, "auth.sso.configure")
    assert payload["deleted"] is True and payload["rows"][0]["action"] == "config.sso.deleted"

    with schema_context("alpha"):
        logged = "\n".join(Entry.objects.values_list("payload", flat=True))
    for secret in ("sup3r-s3cret-client-value", "rotated-s3cret-value", stored):
        assert secret not in logged
    _chain_verifies()


def test_a_password_change_in_the_admin_is_logged_without_the_hash(owner: TenantUser) -> None:
    person = make_user("alpha", role="viewer", name="forgetful")
    person_id = person.user.pk  # type: ignore[attr-defined]
    start = _next_seq()
    response = owner.client.post(
        f"/admin/auth/user/{person_id}/password/",
        {
            "password1": "a-new-long-password-9",
            "usable_password": "true",
            "password2": "a-new-long-password-9",
        },
    )
    assert response.status_code == 302, response.content
    entry, payload = _one(start, "config.user.updated")
    assert list(payload["changes"]) == ["password"]
    assert payload["changes"]["password"]["new"].startswith("[redacted sha256:")
    with schema_context("alpha"):
        hashed = get_user_model().objects.get(pk=person_id).password
    assert hashed not in entry.payload and hashed.split("$")[-1] not in entry.payload


def test_contracts_and_cad_revisions_are_not_logged_twice_and_their_deletion_is() -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from quality.models import ToleranceContract
    from tests.quality.helpers import CONTRACT, PART
    from twins.models import CadRevision

    qc = make_user("alpha", role="qc_manager", name="qc")
    with schema_context("alpha"), tracking.paused():
        asset = Asset.objects.create(
            site=Site.objects.create(name="Twin plant"), tag="T-1", name="Frame"
        )

    start = _next_seq()
    contract = qc.client.post(
        "/api/v1/tolerance-contracts",
        {"asset": asset.pk, "spec": CONTRACT},
        content_type="application/json",
    ).json()
    _one(start, "qc.contract.created")

    start = _next_seq()
    revision = qc.client.post(
        "/api/v1/cad-revisions",
        {
            "asset": asset.pk,
            "units": "in",
            "label": "R1",
            "file": SimpleUploadedFile("part.stl", PART.read_bytes()),
        },
    ).json()
    _one(start, "twins.cad_revision.created")

    start = _next_seq()  # no endpoint deletes them: whoever does, in a shell, is logged
    with schema_context("alpha"), transaction.atomic():
        ToleranceContract.objects.filter(pk=contract["id"]).delete()
        CadRevision.objects.get(pk=revision["id"]).delete()
    entries = _entries(start)
    assert [(e.action, e.actor, e.object_id) for e in entries] == [
        ("config.tolerance_contract.deleted", "system", contract["id"]),
        ("twins.cad_revision.deleted", "system", revision["id"]),
    ]
    assert json.loads(entries[1].payload)["changes"]["sha256"]["old"] == revision["sha256"]
    _chain_verifies()


def test_a_scan_deleted_in_the_admin_is_logged(owner: TenantUser) -> None:
    with schema_context("alpha"), tracking.paused():
        asset = Asset.objects.create(
            site=Site.objects.create(name="Scan plant"), tag="S-1", name="Tank"
        )
        scan = Scan.objects.create(
            asset=asset,
            sha256="ab" * 32,
            size_bytes=1234,
            encoding="laz",
            raw_key="scans/x.laz",
            received_at=timezone.now(),
        )
    start = _next_seq()
    response = owner.client.post(f"/admin/inspections/scan/{scan.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content
    entry, payload = _one(start, "inspections.scan.deleted")
    assert (entry.actor, entry.object_type, entry.object_id) == (
        "boss@alpha.test",
        "inspections.Scan",
        str(scan.pk),
    )
    assert payload["changes"]["sha256"] == {"old": "ab" * 32, "new": None}
    assert "lease_token" not in payload["changes"]
    _chain_verifies()


def test_a_rolled_back_change_leaves_no_entry() -> None:
    start = _next_seq()
    with schema_context("alpha"):
        with pytest.raises(RuntimeError), transaction.atomic():
            Site.objects.create(name="Never")
            assert [e.action for e in _entries(start)] == ["config.site.created"]
            raise RuntimeError("the change fails after the row was written")
        assert not Site.objects.filter(name="Never").exists()
    assert _entries(start) == []
    _chain_verifies()


def test_outside_a_request_the_actor_is_system_or_named_and_bulk_deletes_are_seen() -> None:
    start = _next_seq()
    with schema_context("alpha"), transaction.atomic():
        first = Site.objects.create(name="Shell 1")
        with tracking.acting_as("ops:migration-42"):
            second = Site.objects.create(name="Shell 2")
        Site.objects.filter(name__startswith="Shell").delete()  # a queryset, not a row
    entries = _entries(start)
    assert [(e.action, e.actor) for e in entries] == [
        ("config.site.created", "system"),
        ("config.site.created", "ops:migration-42"),
        ("config.site.deleted", "system"),
        ("config.site.deleted", "system"),
    ]
    assert {e.object_id for e in entries[2:]} == {str(first.pk), str(second.pk)}
    _chain_verifies()


def test_every_tracked_action_is_in_the_readme() -> None:
    text = README.read_text()
    missing = [a for a in tracking.logged_actions() if f"`{a}`" not in text]
    assert missing == []
