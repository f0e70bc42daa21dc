"""Every attack on the API's credentials is refused with 401/403 problem+json."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts import jwt_keys
from accounts.credentials import access_token_issue, api_key_issue
from accounts.models import ApiKey
from devices.models import Device
from tests.conftest import TenantUser, make_user

pytestmark = pytest.mark.django_db


def _refused(response, status: int = 401, slug: str = "authentication-failed") -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith(f"/{slug}"), body
    return str(body["detail"])


def _bearer(token: str, host: str = "alpha.localhost") -> object:
    return Client(HTTP_HOST=host).get("/api/v1/sites", HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def operator() -> TenantUser:
    return make_user("alpha", role="operator", name="op")


def _token(user: TenantUser, **overrides: object) -> str:
    with schema_context(user.schema):
        token = access_token_issue(user=user.user, schema=user.schema, role="operator")
    if not overrides:
        return token
    key = jwt_keys.active_key()
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(overrides)
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_valid_access_token_is_accepted(operator: TenantUser) -> None:
    response = _bearer(_token(operator))
    assert response.status_code == 200
    me = Client(HTTP_HOST="alpha.localhost").get(
        "/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {_token(operator)}").json()
    assert me == {"name": "op@alpha.test", "kind": "user_token", "role": "operator",
                  "workspace": "alpha"}


def test_alg_none_is_refused(operator: TenantUser) -> None:
    claims = jwt.decode(_token(operator), options={"verify_signature": False})
    header = {"alg": "none", "kid": jwt_keys.active_key().kid, "typ": "JWT"}
    token = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."
    assert "algorithm" in _refused(_bearer(token))


def test_hs256_signed_with_the_public_key_is_refused(operator: TenantUser) -> None:
    """Algorithm confusion: the public key used as an HMAC secret."""
    claims = jwt.decode(_token(operator), options={"verify_signature": False})
    public = jwt_keys.active_key().public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "kid": jwt_keys.active_key().kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    import hashlib
    import hmac

    signature = hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert "algorithm" in _refused(_bearer(f"{header}.{payload}.{_b64(signature)}"))


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"nbf": int(time.time()) + 3600}, "not valid yet"),
    ({"iat": int(time.time()) + 3600}, "not valid yet"),
    ({"aud": "another-api"}, "audience"),
    ({"iss": "https://evil.example"}, "issuer"),
])
def test_claims_are_checked(operator: TenantUser, overrides: dict, reason: str) -> None:
    assert reason in _refused(_bearer(_token(operator, **overrides)))


def test_unknown_kid_is_refused(operator: TenantUser) -> None:
    claims = jwt.decode(_token(operator), options={"verify_signature": False})
    token = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                       headers={"kid": "k-not-ours"})
    assert "unknown" in _refused(_bearer(token))


def test_tampered_payload_is_refused(operator: TenantUser) -> None:
    header, payload, signature = _token(operator).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "owner"
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    assert "signature" in _refused(_bearer(forged))


def test_token_of_another_tenant_is_refused_on_this_host(operator: TenantUser) -> None:
    beta_user = make_user("beta", role="admin", name="b")
    with schema_context("beta"):
        token = access_token_issue(user=beta_user.user, schema="beta", role="admin")
    _refused(_bearer(token, host="alpha.localhost"), 403, "credential-tenant-mismatch")
    assert _bearer(token, host="beta.localhost").status_code == 200


def test_token_claiming_another_tenant_is_refused(operator: TenantUser) -> None:
    """A (validly signed) token claiming beta, on alpha's host, is never served as alpha.

    Depending on whether beta has a user with that id it is refused as an unknown user
    (401) or as a credential of another workspace (403); either way nothing is read.
    """
    response = _bearer(_token(operator, tnt="beta"), host="alpha.localhost")
    assert response.status_code in (401, 403)
    assert response["Content-Type"] == "application/problem+json"


def test_oversized_token_is_refused_before_parsing(operator: TenantUser) -> None:
    assert "too large" in _refused(_bearer("a" * 5000))


@pytest.mark.parametrize("header", [
    "Bearer", "Bearer ", "Bearer  token", "Api-Key", "Basic dXNlcjpwYXNz", "Token abc",
    "Bearer a.b", "Api-Key not-a-key", " Bearer x", "Bearer \u00e9t\u00e9",
])
def test_malformed_authorization_headers_are_refused(header: str) -> None:
    response = Client(HTTP_HOST="alpha.localhost").get("/api/v1/sites",
                                                       HTTP_AUTHORIZATION=header)
    _refused(response)


def test_key_rotation_keeps_old_tokens_until_the_key_retires(operator: TenantUser) -> None:
    old_token = _token(operator)
    old_kid = jwt_keys.active_key().kid
    new_kid = jwt_keys.rotate()
    try:
        assert jwt.get_unverified_header(_token(operator))["kid"] == new_kid
        assert _bearer(old_token).status_code == 200
        jwks = Client(HTTP_HOST="localhost").get("/api/v1/auth/jwks").json()
        assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
        assert all(k["alg"] == "EdDSA" and "d" not in k for k in jwks["keys"])
        jwt_keys.retire(old_kid)
        assert "unknown" in _refused(_bearer(old_token))
    finally:
        pass


# --- login, refresh, revocation -------------------------------------------------------


def _login(user: TenantUser) -> dict:
    response = Client(HTTP_HOST="alpha.localhost").post(
        "/api/v1/auth/token", {"username": user.user.username,  # type: ignore[attr-defined]
                               "password": "a-long-test-password"},
        content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


def _refresh(token: str) -> object:
    return Client(HTTP_HOST="alpha.localhost").post(
        "/api/v1/auth/token/refresh", {"refresh": token}, content_type="application/json")


def test_login_refresh_rotation_and_reuse_detection(operator: TenantUser) -> None:
    pair = _login(operator)
    assert _bearer(pair["access"]).status_code == 200
    rotated = _refresh(pair["refresh"])
    assert rotated.status_code == 200
    # The old refresh token again: theft suspected, the whole session is revoked.
    assert "already used" in _refused(_refresh(pair["refresh"]))
    assert "revoked" in _refused(_refresh(rotated.json()["refresh"]))


def test_wrong_password_is_refused(operator: TenantUser) -> None:
    response = Client(HTTP_HOST="alpha.localhost").post(
        "/api/v1/auth/token", {"username": "op@alpha.test", "password": "wrong"},
        content_type="application/json")
    assert "not correct" in _refused(response)


def test_revoked_refresh_token_is_refused(operator: TenantUser) -> None:
    pair = _login(operator)
    revoke = Client(HTTP_HOST="alpha.localhost").post(
        "/api/v1/auth/token/revoke", {"refresh": pair["refresh"]},
        content_type="application/json")
    assert revoke.status_code == 204
    assert "revoked" in _refused(_refresh(pair["refresh"]))


def test_revoke_all_sessions(operator: TenantUser) -> None:
    first, second = _login(operator), _login(operator)
    response = Client(HTTP_HOST="alpha.localhost").post(
        "/api/v1/auth/sessions/revoke-all", HTTP_AUTHORIZATION=f"Bearer {first['access']}")
    assert response.json() == {"revoked": 2}
    for pair in (first, second):
        _refused(_refresh(pair["refresh"]))


# --- API keys -------------------------------------------------------------------------


def _key(schema: str = "alpha", **kwargs: object) -> str:
    with schema_context(schema):
        return api_key_issue(schema=schema, name="ci", role=kwargs.pop("role", "operator"),
                             **kwargs).key  # type: ignore[arg-type]


def _with_key(key: str, host: str | None = "alpha.localhost") -> object:
    client = Client(HTTP_HOST=host) if host else Client(HTTP_HOST="api.localhost")
    return client.get("/api/v1/sites", HTTP_AUTHORIZATION=f"Api-Key {key}")


def test_api_key_resolves_its_tenant_without_a_host() -> None:
    key = _key()
    assert _with_key(key, host=None).status_code == 200
    with schema_context("alpha"):
        row = ApiKey.objects.get(prefix=key.split(".")[2])
        assert row.last_used_at is not None
        assert row.key_hash != key and key not in row.key_hash


def test_api_key_revoked_one_second_ago_is_refused() -> None:
    key = _key()
    assert _with_key(key).status_code == 200
    with schema_context("alpha"):
        ApiKey.objects.filter(prefix=key.split(".")[2]).update(
            revoked_at=timezone.now() - timedelta(seconds=1))
    assert "revoked" in _refused(_with_key(key))


def test_expired_api_key_is_refused() -> None:
    key = _key(expires_at=timezone.now() - timedelta(seconds=1))
    assert "expired" in _refused(_with_key(key))


def test_api_key_of_tenant_a_on_tenant_b_is_refused() -> None:
    _refused(_with_key(_key("alpha"), host="beta.localhost"), 403,
             "credential-tenant-mismatch")


def test_api_key_with_a_forged_secret_is_refused() -> None:
    key = _key()
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert "not valid" in _refused(_with_key(forged))
    # The same prefix under another workspace's name: looked up there, not found.
    assert "not valid" in _refused(_with_key(key.replace("d2rk.alpha.", "d2rk.beta."),
                                             host=None))


def test_scopes_narrow_a_key() -> None:
    key = _key(role="admin", scopes=["view_inspections"])
    client = Client(HTTP_HOST="alpha.localhost", HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/v1/sites").status_code == 200
    _refused(client.post("/api/v1/sites", {"name": "x"}, content_type="application/json"),
             403, "permission-denied")


def test_key_cannot_be_created_with_more_rights_than_the_creator() -> None:
    qc = make_user("alpha", role="qc_manager", name="qc")
    _refused(qc.client.post("/api/v1/api-keys", {"name": "x", "role": "owner"},
                            content_type="application/json"), 403, "permission-denied")
    admin = make_user("alpha", role="admin", name="adm")
    created = admin.client.post("/api/v1/api-keys", {"name": "x", "role": "viewer"},
                                content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("d2rk.alpha.") and body["role"] == "viewer"
    listed = admin.client.get("/api/v1/api-keys").json()["results"]
    assert all("key" not in item for item in listed)  # shown once only
    revoked = admin.client.post(f"/api/v1/api-keys/{body['id']}/revoke")
    assert revoked.json()["revoked_at"] is not None
    assert "revoked" in _refused(_with_key(body["key"]))


# --- devices --------------------------------------------------------------------------


def _device(state: str, key: Ed25519PrivateKey | None = None) -> Device:
    pem = ""
    if key is not None:
        pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo
                                            ).decode()
    with schema_context("alpha"):
        return Device.objects.create(serial=f"SN-{uuid.uuid4().hex[:8]}", model="D2R-Edge",
                                     state=state, public_key_pem=pem)


def _device_token(device: Device, key: Ed25519PrivateKey, lifetime: int = 120) -> str:
    now = int(time.time())
    return jwt.encode({"aud": "d2r-api", "iat": now, "nbf": now, "exp": now + lifetime,
                       "jti": uuid.uuid4().hex}, key, algorithm="EdDSA",
                      headers={"kid": f"device:alpha:{device.uid}"})


def test_device_signed_token_is_accepted_once() -> None:
    key = Ed25519PrivateKey.generate()
    device = _device("active", key)
    token = _device_token(device, key)
    assert _bearer(token).status_code == 200
    assert "already used" in _refused(_bearer(token))


@pytest.mark.parametrize("state", ["suspended", "decommissioned", "provisioned"])
def test_device_that_is_not_active_is_refused(state: str) -> None:
    key = Ed25519PrivateKey.generate()
    device = _device(state, key)
    assert state in _refused(_bearer(_device_token(device, key)), 403, "device-refused")
    with schema_context("alpha"):
        issued = api_key_issue(schema="alpha", name="dev", role="operator",
                               device_id=device.pk)
    assert state in _refused(_with_key(issued.key), 403, "device-refused")


def test_device_token_signed_by_another_key_is_refused() -> None:
    device = _device("active", Ed25519PrivateKey.generate())
    assert "signature" in _refused(_bearer(_device_token(device, Ed25519PrivateKey.generate())))


def test_long_lived_device_token_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    device = _device("active", key)
    assert "five minutes" in _refused(_bearer(_device_token(device, key, lifetime=3600)))


# --- escalation and mass assignment ---------------------------------------------------


def test_viewer_cannot_write_through_the_api() -> None:
    viewer = make_user("alpha", role="viewer", name="v")
    assert viewer.client.get("/api/v1/sites").status_code == 200
    _refused(viewer.client.post("/api/v1/sites", {"name": "x"},
                                content_type="application/json"), 403, "permission-denied")


def test_tenant_and_role_fields_cannot_be_mass_assigned(alpha_admin: TenantUser) -> None:
    created = alpha_admin.client.post(
        "/api/v1/sites", {"name": "Plant M", "tenant": "beta", "schema_name": "beta",
                          "role": "owner"}, content_type="application/json")
    assert created.status_code == 201
    assert set(created.json()) == {"id", "name", "location", "timezone", "created_at"}
    with schema_context("beta"):
        from inspections.models import Site

        assert not Site.objects.filter(name="Plant M").exists()
