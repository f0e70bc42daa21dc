"""SAML 2.0 SSO per workspace, against a real pysaml2 IdP: JIT provisioning with the
mapped role, and every known attack refused with a clear page and an audit event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import Membership, RefreshToken, SsoConfiguration, SsoIdentity
from accounts.sso import services
from tests.accounts.saml_idp import IDP_ENTITY_ID, SamlIdp, make_key_pair
from tests.conftest import TENANTS, make_user

pytestmark = pytest.mark.django_db

ALPHA_SP = "https://alpha.localhost/saml2/metadata/"
BETA_SP = "https://beta.localhost/saml2/metadata/"
ALPHA_ACS = "http://alpha.localhost/saml2/acs/"
ADA = {"mail": ["Ada@Alpha.example"], "givenName": ["Ada"], "sn": ["Lovelace"],
       "groups": ["staff", "d2r-qc"]}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("saml-keys")
    return {name: make_key_pair(name, directory) for name in ("idp", "impostor", "other-idp")}


def configure(schema: str, idp: SamlIdp, **fields: Any) -> SsoConfiguration:
    values: dict[str, Any] = {
        "saml_enabled": True, "saml_idp_entity_id": IDP_ENTITY_ID,
        "saml_idp_metadata_xml": idp.metadata_xml(), "saml_role_attribute": "groups",
        "saml_role_map": [["d2r-admins", "admin"], ["d2r-qc", "qc_manager"]],
        **fields,
    }
    with schema_context(schema):
        config = SsoConfiguration(**values)
        config.full_clean()
        return services.sso_configuration_save(configuration=config, client_secret=None,
                                               actor="test")


@pytest.fixture
def idp(keys: dict[str, tuple[Path, Path]]) -> SamlIdp:
    """The IdP alpha (and beta) trust, which trusts both workspaces' SP metadata."""
    provider = SamlIdp(keys["idp"])
    for schema in ("alpha", "beta"):
        configure(schema, provider)
        metadata = Client(HTTP_HOST=TENANTS[schema]).get("/saml2/metadata/")
        assert metadata.status_code == 200
        provider.trust_sp(metadata.content.decode())
    return provider


def start_login(client: Client, idp: SamlIdp) -> tuple[Any, str]:
    response = client.get("/saml2/login/", {"next": "/admin/"})
    assert response.status_code == 302
    assert response["Location"].startswith("https://idp.example.test/saml/sso?")
    return idp.read_request(response["Location"])


def login(client: Client, idp: SamlIdp, *, signer: SamlIdp | None = None,
          **response_args: Any) -> Any:
    """SP-initiated login: our AuthnRequest → the IdP's signed response → our ACS."""
    request, relay_state = start_login(client, idp)
    args: dict[str, Any] = {"destination": ALPHA_ACS, "audience": request.issuer.text,
                            "in_response_to": request.id, "identity": ADA, **response_args}
    saml_response = (signer or idp).response(**args)
    return client.post("/saml2/acs/", {"SAMLResponse": saml_response,
                                       "RelayState": relay_state})


def audit_events(schema: str, kind: str) -> list[dict[str, Any]]:
    from audit.models import Entry

    with schema_context(schema):
        return [json.loads(e.payload) | {"actor": e.actor}
                for e in Entry.objects.filter(action=f"auth.{kind}").order_by("seq")]


def refused(response: Any, reason: str, schema: str = "alpha", *,
            signed_in_before: bool = False) -> None:
    assert response.status_code in (400, 403), response.content
    assert response["Content-Type"].startswith("text/html")
    assert f"<code>{reason}</code>".encode() in response.content, response.content
    if not signed_in_before:
        assert "_auth_user_id" not in response.wsgi_request.session
    assert audit_events(schema, "sso.failure")[-1]["reason"] == reason


def test_sp_metadata_names_each_workspace_host(idp: SamlIdp) -> None:
    alpha = Client(HTTP_HOST="alpha.localhost").get("/saml2/metadata/").content.decode()
    beta = Client(HTTP_HOST="beta.localhost").get("/saml2/metadata/").content.decode()

    assert f'entityID="{ALPHA_SP}"' in alpha and ALPHA_ACS in alpha
    assert f'entityID="{BETA_SP}"' in beta and "http://beta.localhost/saml2/acs/" in beta


def test_login_provisions_the_user_with_the_mapped_role_and_updates_it(idp: SamlIdp) -> None:
    client = Client(HTTP_HOST="alpha.localhost")

    response = login(client, idp)

    assert response.status_code == 302 and response["Location"] == "/admin/"
    with schema_context("alpha"):
        identity = SsoIdentity.objects.select_related("user").get(subject="ada-0001")
        user = identity.user
        assert (user.username, user.email, user.first_name, user.last_name) == (
            "ada@alpha.example", "ada@alpha.example", "Ada", "Lovelace")
        assert not user.has_usable_password()
        assert Membership.objects.get(user=user).role == "qc_manager"
    assert client.get("/api/v1/me").json()["role"] == "qc_manager"
    event = audit_events("alpha", "sso.login")[-1]
    rows = event.pop("rows")  # the provisioned rows, in the login's one entry
    assert event | {"actor": "-"} == {
        "actor": "-", "protocol": "saml", "issuer": IDP_ENTITY_ID, "role": "qc_manager",
        "previous_role": None, "user_created": True}
    assert [(r["action"], r["object_id"]) for r in rows] == [
        ("config.user.created", str(user.pk)), ("config.membership.created",
                                                str(user.membership.pk))]
    assert rows[0]["changes"]["password"]["new"].startswith("[redacted sha256:")

    # The IdP moves Ada to the admins group: her role follows at the next login.
    again = Client(HTTP_HOST="alpha.localhost")
    assert login(again, idp, identity={**ADA, "groups": ["d2r-admins", "d2r-qc"]}
                 ).status_code == 302
    with schema_context("alpha"):
        assert Membership.objects.get(user=user).role == "admin"
        assert SsoIdentity.objects.filter(user=user).count() == 1


def test_no_mapped_role_and_no_default_role_is_refused(idp: SamlIdp) -> None:
    response = login(Client(HTTP_HOST="alpha.localhost"), idp,
                     identity={**ADA, "groups": ["staff"]})

    refused(response, "no-role")
    with schema_context("alpha"):
        assert not SsoIdentity.objects.exists()


def test_an_existing_local_user_is_linked_by_email_and_owners_stay_owners(
        idp: SamlIdp) -> None:
    owner = make_user("alpha", role="owner", name="boss")
    with schema_context("alpha"):
        owner.user.email = "ada@alpha.example"
        owner.user.save()

    assert login(Client(HTTP_HOST="alpha.localhost"), idp).status_code == 302

    with schema_context("alpha"):
        assert SsoIdentity.objects.get().user_id == owner.user.pk
        assert Membership.objects.get(user=owner.user).role == "owner"


def test_response_signed_by_a_certificate_that_is_not_the_idps_is_refused(
        idp: SamlIdp, keys: dict[str, tuple[Path, Path]]) -> None:
    impostor = SamlIdp(keys["impostor"])  # same entity id, its own key
    impostor.trust_sp(Client(HTTP_HOST="alpha.localhost").get("/saml2/metadata/")
                      .content.decode())

    refused(login(Client(HTTP_HOST="alpha.localhost"), idp, signer=impostor), "bad-signature")
    with schema_context("alpha"):
        assert not SsoIdentity.objects.exists()


def test_an_unsigned_response_is_refused(idp: SamlIdp) -> None:
    response = login(Client(HTTP_HOST="alpha.localhost"), idp,
                     sign_assertion=False, sign_response=False)

    refused(response, "unsigned")


def test_another_idp_in_the_same_metadata_is_not_trusted(
        idp: SamlIdp, keys: dict[str, tuple[Path, Path]]) -> None:
    other = SamlIdp(keys["other-idp"], entity_id="https://other.example.test/idp")
    aggregate = ('<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
                 f"{idp.metadata_xml()}{other.metadata_xml()}</md:EntitiesDescriptor>")
    with schema_context("alpha"):
        SsoConfiguration.objects.filter(pk=1).update(saml_idp_metadata_xml=aggregate)
    other.trust_sp(Client(HTTP_HOST="alpha.localhost").get("/saml2/metadata/")
                   .content.decode())

    refused(login(Client(HTTP_HOST="alpha.localhost"), idp, signer=other), "wrong-issuer")


def test_an_assertion_replayed_is_refused(idp: SamlIdp) -> None:
    client = Client(HTTP_HOST="alpha.localhost")
    request, _ = start_login(client, idp)
    saml_response = idp.response(destination=ALPHA_ACS, audience=ALPHA_SP,
                                 in_response_to=request.id, identity=ADA)
    assert client.post("/saml2/acs/", {"SAMLResponse": saml_response}).status_code == 302

    # The same browser, and an attacker's browser that started a login of its own.
    attacker = Client(HTTP_HOST="alpha.localhost")
    start_login(attacker, idp)
    refused(client.post("/saml2/acs/", {"SAMLResponse": saml_response}), "unsolicited",
            signed_in_before=True)
    refused(attacker.post("/saml2/acs/", {"SAMLResponse": saml_response}), "unsolicited")


def test_the_replay_store_refuses_a_replayed_idp_initiated_assertion(idp: SamlIdp) -> None:
    # IdP-initiated responses answer no request, so only the replay store stops a replay.
    with schema_context("alpha"):
        SsoConfiguration.objects.filter(pk=1).update(saml_allow_idp_initiated=True)
    saml_response = idp.response(destination=ALPHA_ACS, audience=ALPHA_SP,
                                 in_response_to=None, identity=ADA)

    first = Client(HTTP_HOST="alpha.localhost").post("/saml2/acs/",
                                                     {"SAMLResponse": saml_response})
    assert first.status_code == 302
    refused(Client(HTTP_HOST="alpha.localhost").post("/saml2/acs/",
                                                     {"SAMLResponse": saml_response}),
            "replayed")


def test_an_idp_initiated_response_is_refused_unless_allowed(idp: SamlIdp) -> None:
    saml_response = idp.response(destination=ALPHA_ACS, audience=ALPHA_SP,
                                 in_response_to=None, identity=ADA)

    refused(Client(HTTP_HOST="alpha.localhost").post("/saml2/acs/",
                                                     {"SAMLResponse": saml_response}),
            "unsolicited")


def test_an_assertion_for_another_audience_is_refused(idp: SamlIdp) -> None:
    # Signed by the right IdP, for beta's service provider, posted to alpha.
    response = login(Client(HTTP_HOST="alpha.localhost"), idp, audience=BETA_SP)

    refused(response, "wrong-audience")


def test_a_response_for_another_acs_url_is_refused(idp: SamlIdp) -> None:
    response = login(Client(HTTP_HOST="alpha.localhost"), idp,
                     destination="http://beta.localhost/saml2/acs/")

    refused(response, "invalid-response")


def test_a_workspace_without_saml_answers_a_clear_page() -> None:
    response = Client(HTTP_HOST="beta.localhost").get("/saml2/login/")

    assert response.status_code == 404
    assert b"<code>not-configured</code>" in response.content


# --- SSO required --------------------------------------------------------------------


def test_sso_required_refuses_password_logins_except_the_break_glass_owner(
        idp: SamlIdp) -> None:
    owner = make_user("alpha", role="owner", name="glass")
    viewer = make_user("alpha", role="viewer", name="pat")
    with schema_context("alpha"):
        token = RefreshToken.objects.create(user=viewer.user, token_hash="1" * 64,
                                            family="00000000-0000-0000-0000-000000000001",
                                            expires_at="2099-01-01T00:00Z")
    configure("alpha", idp, sso_required=True, break_glass_user=owner.user)
    api = Client(HTTP_HOST="alpha.localhost")

    # A password session from before the switch ends at its next request.
    page = viewer.client.get("/admin/")
    assert page.status_code == 403 and b"<code>sso-required</code>" in page.content
    assert b'href="/saml2/login/"' in page.content
    assert viewer.client.get("/admin/").status_code == 302  # logged out: to the login page
    # The API token endpoint refuses the password too; the break-glass owner passes.
    denied = api.post("/api/v1/auth/token", {"username": "pat@alpha.test",
                                             "password": "a-long-test-password"},
                      content_type="application/json")
    assert denied.status_code == 403 and "single sign-on" in denied.json()["detail"]
    allowed = api.post("/api/v1/auth/token", {"username": "glass@alpha.test",
                                              "password": "a-long-test-password"},
                       content_type="application/json")
    assert allowed.status_code == 200, allowed.content
    assert owner.client.get("/admin/").status_code == 200
    # Refresh tokens issued to password logins were revoked when SSO became required.
    with schema_context("alpha"):
        token.refresh_from_db()
        assert token.revoked_at is not None
    assert [e["actor"] for e in audit_events("alpha", "sso.password_refused")] == [
        "pat@alpha.test", "pat@alpha.test"]
    assert audit_events("alpha", "sso.break_glass_login")

    # A person who signs in through the IdP keeps their session.
    sso_client = Client(HTTP_HOST="alpha.localhost")
    assert login(sso_client, idp).status_code == 302
    assert sso_client.get("/api/v1/me").status_code == 200


def test_sso_required_needs_a_break_glass_owner(idp: SamlIdp) -> None:
    viewer = make_user("alpha", role="viewer", name="pat")
    with schema_context("alpha"):
        config = SsoConfiguration.objects.get(pk=1)
        config.sso_required = True
        with pytest.raises(Exception, match="break-glass"):
            config.full_clean()
        config.break_glass_user = viewer.user
        with pytest.raises(Exception, match="must be an owner"):
            config.full_clean()


def test_the_admin_page_is_for_workspace_managers_only(idp: SamlIdp) -> None:
    admin = make_user("alpha", role="admin", name="root")
    qc = make_user("alpha", role="qc_manager", name="qc")

    page = admin.client.get("/admin/accounts/ssoconfiguration/1/change/")
    assert page.status_code == 200
    assert ALPHA_SP.encode() in page.content
    assert qc.client.get("/admin/accounts/ssoconfiguration/1/change/").status_code == 403


def test_sso_required_refuses_the_browser_password_login_in_the_same_request(
        idp: SamlIdp) -> None:
    owner = make_user("alpha", role="owner", name="glass")
    viewer = make_user("alpha", role="viewer", name="pat")
    with schema_context("alpha"):
        for person in (owner, viewer):
            person.user.email = person.user.username
            person.user.save()
    configure("alpha", idp, sso_required=True, break_glass_user=owner.user)

    browser = Client(HTTP_HOST="alpha.localhost")
    response = browser.post("/accounts/login/", {"login": "pat@alpha.test",
                                                 "password": "a-long-test-password"})

    assert response.status_code == 403 and b"<code>sso-required</code>" in response.content
    assert "_auth_user_id" not in browser.session
    glass = Client(HTTP_HOST="alpha.localhost")
    assert glass.post("/accounts/login/", {"login": "glass@alpha.test",
                                           "password": "a-long-test-password"}
                      ).status_code == 302
    assert "_auth_user_id" in glass.session
