"""OpenID Connect SSO per workspace, against a real OP (authlib, on a loopback port):
code flow with state, nonce and PKCE, JIT provisioning, and the attacks refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlparse

import pytest
import requests
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import Membership, SsoConfiguration, SsoIdentity
from accounts.sso import services
from accounts.sso.crypto import SecretUnreadable, secret_decrypt
from tests.accounts.oidc_provider import OidcProvider
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

ALPHA_CALLBACK = "http://alpha.localhost/oidc/callback/"
ADA = {"sub": "ada-0001", "email": "ada@alpha.example", "email_verified": True,
       "given_name": "Ada", "family_name": "Lovelace", "groups": ["staff", "d2r-admins"]}


@pytest.fixture(scope="module")
def op() -> Iterator[OidcProvider]:
    provider = OidcProvider()
    provider.register("alpha-d2r", "alpha-client-secret", ALPHA_CALLBACK)
    yield provider
    provider.close()


def configure(op: OidcProvider, **fields: Any) -> SsoConfiguration:
    values: dict[str, Any] = {
        "oidc_enabled": True, "oidc_issuer": op.issuer, "oidc_client_id": "alpha-d2r",
        "oidc_role_claim": "groups", "oidc_role_map": [["d2r-admins", "admin"]],
        "default_role": "viewer", **fields,
    }
    with schema_context("alpha"):
        config = SsoConfiguration(**values)
        config.full_clean()
        return services.sso_configuration_save(
            configuration=config, client_secret="alpha-client-secret", actor="test")


@pytest.fixture
def alpha_oidc(op: OidcProvider, settings: Any) -> OidcProvider:
    settings.SSO_ALLOW_HTTP_PROVIDERS = True  # the test OP is plain HTTP on loopback
    op.person, op.id_token_claims = dict(ADA), {}
    op.token_requests.clear()
    configure(op)
    return op


def start(client: Client) -> str:
    response = client.get("/oidc/authenticate/", {"next": "/admin/"})
    assert response.status_code == 302, response.content
    return str(response["Location"])


def at_op(authorization_url: str) -> str:
    """The browser at the OP (the person is signed in there): back with a code."""
    response = requests.get(authorization_url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    return str(response.headers["Location"])


def callback(client: Client, url: str, **replace: str) -> Any:
    parsed = urlparse(url)
    assert f"http://alpha.localhost{parsed.path}" == ALPHA_CALLBACK
    return client.get(parsed.path, {**dict(parse_qsl(parsed.query)), **replace})


def audit_events(kind: str) -> list[dict[str, Any]]:
    from audit.models import Entry

    with schema_context("alpha"):
        return [json.loads(e.payload) | {"actor": e.actor}
                for e in Entry.objects.filter(action=f"auth.{kind}").order_by("seq")]


def refused(response: Any, reason: str) -> None:
    assert response.status_code in (400, 403), response.content
    assert f"<code>{reason}</code>".encode() in response.content, response.content
    assert "_auth_user_id" not in response.wsgi_request.session
    assert audit_events("sso.failure")[-1]["reason"] == reason


def test_login_uses_state_nonce_and_pkce_and_provisions_the_mapped_role(
        alpha_oidc: OidcProvider) -> None:
    client = Client(HTTP_HOST="alpha.localhost")

    authorization_url = start(client)
    query = parse_qs(urlparse(authorization_url).query)
    assert authorization_url.startswith(f"{alpha_oidc.issuer}/authorize?")
    assert query["client_id"] == ["alpha-d2r"]
    assert query["redirect_uri"] == [ALPHA_CALLBACK]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    response = callback(client, at_op(authorization_url))

    assert response.status_code == 302 and response["Location"] == "/admin/"
    token_request = alpha_oidc.token_requests[-1]
    assert "code_verifier" in token_request and "client_secret" not in token_request
    with schema_context("alpha"):
        identity = SsoIdentity.objects.select_related("user").get(
            protocol="oidc", issuer=alpha_oidc.issuer, subject="ada-0001")
        assert identity.user.email == "ada@alpha.example"
        assert Membership.objects.get(user=identity.user).role == "admin"
    assert client.get("/api/v1/me").json()["role"] == "admin"
    assert audit_events("sso.login")[-1]["protocol"] == "oidc"

    # Removed from the admins group at the IdP: the default role at the next login.
    alpha_oidc.person["groups"] = ["staff"]
    again = Client(HTTP_HOST="alpha.localhost")
    assert callback(again, at_op(start(again))).status_code == 302
    with schema_context("alpha"):
        assert Membership.objects.get(user=identity.user).role == "viewer"


def test_a_callback_with_a_wrong_state_is_refused(alpha_oidc: OidcProvider) -> None:
    client = Client(HTTP_HOST="alpha.localhost")
    back = at_op(start(client))

    refused(callback(client, back, state="not-the-state-we-sent"), "bad-state")
    # Login CSRF: the attacker's code and state, delivered to a victim's browser.
    refused(callback(Client(HTTP_HOST="alpha.localhost"), back), "bad-state")


def test_a_callback_with_a_wrong_nonce_is_refused(alpha_oidc: OidcProvider) -> None:
    configure(alpha_oidc, oidc_use_pkce=False)  # else PKCE refuses first (next test)
    client = Client(HTTP_HOST="alpha.localhost")
    first, second = start(client), start(client)
    code_of_first = parse_qs(urlparse(at_op(first)).query)["code"][0]
    state_of_second = parse_qs(urlparse(second).query)["state"][0]

    # A code issued for another login (another nonce) injected with a valid state.
    response = client.get("/oidc/callback/", {"code": code_of_first,
                                                "state": state_of_second})

    refused(response, "bad-nonce")


def test_an_injected_code_is_refused_by_pkce(alpha_oidc: OidcProvider) -> None:
    client = Client(HTTP_HOST="alpha.localhost")
    first, second = start(client), start(client)
    code_of_first = parse_qs(urlparse(at_op(first)).query)["code"][0]
    state_of_second = parse_qs(urlparse(second).query)["state"][0]

    response = client.get("/oidc/callback/", {"code": code_of_first,
                                                "state": state_of_second})

    refused(response, "token-exchange-failed")


@pytest.mark.parametrize("claims", [{"aud": ["another-client"]},
                                    {"iss": "https://evil.example"},
                                    {"exp": 1_000_000_000}])
def test_an_id_token_not_for_this_login_is_refused(alpha_oidc: OidcProvider,
                                                   claims: dict[str, Any]) -> None:
    alpha_oidc.id_token_claims = claims
    client = Client(HTTP_HOST="alpha.localhost")

    refused(callback(client, at_op(start(client))), "bad-token")


def test_the_idp_refusing_is_shown_and_recorded(alpha_oidc: OidcProvider) -> None:
    client = Client(HTTP_HOST="alpha.localhost")
    state = parse_qs(urlparse(start(client)).query)["state"][0]

    refused(client.get("/oidc/callback/", {"error": "access_denied", "state": state}),
            "idp-error")


def test_an_unverified_email_cannot_take_over_a_local_account(
        alpha_oidc: OidcProvider) -> None:
    make_user("alpha", role="owner", name="boss")
    alpha_oidc.person = {**ADA, "sub": "mallory", "email": "boss@alpha.test",
                         "email_verified": False}
    client = Client(HTTP_HOST="alpha.localhost")

    refused(callback(client, at_op(start(client))), "identity-conflict")


def test_discovery_must_name_the_configured_issuer(alpha_oidc: OidcProvider) -> None:
    with schema_context("alpha"):
        SsoConfiguration.objects.filter(pk=1).update(oidc_issuer=alpha_oidc.issuer + "/x")

    response = Client(HTTP_HOST="alpha.localhost").get("/oidc/authenticate/")

    assert response.status_code == 502
    assert b"<code>provider-unavailable</code>" in response.content

    with schema_context("alpha"):
        SsoConfiguration.objects.filter(pk=1).update(oidc_issuer=alpha_oidc.issuer + "/")
    refused(Client(HTTP_HOST="alpha.localhost").get("/oidc/authenticate/"), "wrong-issuer")


def test_the_client_secret_is_stored_encrypted_and_never_shown(
        alpha_oidc: OidcProvider) -> None:
    admin = make_user("alpha", role="admin", name="root")
    with schema_context("alpha"):
        stored = SsoConfiguration.objects.get(pk=1).oidc_client_secret_encrypted
    assert stored.startswith("v1.") and "alpha-client-secret" not in stored
    with pytest.raises(SecretUnreadable):  # bound to alpha: useless in another workspace
        secret_decrypt(stored, context="beta:oidc_client_secret")

    page = admin.client.get("/admin/accounts/ssoconfiguration/1/change/")
    assert page.status_code == 200
    assert b"alpha-client-secret" not in page.content and stored.encode() not in page.content
    assert b"set (encrypted)" in page.content

    # Saving the form without a secret keeps the stored one; a new one replaces it.
    form = {
        "default_role": "viewer", "saml_email_attribute": "mail",
        "saml_role_attribute": "groups", "saml_role_map": "[]",
        "saml_want_assertions_signed": "on", "oidc_enabled": "on",
        "oidc_issuer": alpha_oidc.issuer, "oidc_client_id": "alpha-d2r",
        "oidc_scopes": "openid email profile", "oidc_use_pkce": "on",
        "oidc_role_claim": "groups", "oidc_role_map": '[["d2r-admins", "admin"]]',
        "oidc_client_secret": "",
    }
    url = "/admin/accounts/ssoconfiguration/1/change/"
    assert admin.client.post(url, form).status_code == 302
    with schema_context("alpha"):
        assert SsoConfiguration.objects.get(pk=1).oidc_client_secret_encrypted == stored
    assert admin.client.post(url, {**form, "oidc_client_secret": "rotated"}).status_code == 302
    with schema_context("alpha"):
        config = SsoConfiguration.objects.get(pk=1)
        assert services.oidc_client_secret_get(config) == "rotated"
    assert audit_events("sso.configure")[-1]["client_secret_changed"] is True
