"""SAML 2.0 per workspace on top of djangosaml2.

djangosaml2 reads one global SAML_CONFIG; here `sp_config_for_request` (the
SAML_CONFIG_LOADER) builds the pysaml2 SP configuration on every request from the
workspace's `SsoConfiguration` row: the SP entity id and ACS URL of the request's host,
the IdP metadata stored for the workspace, and the signing requirements. The views add
what djangosaml2 lacks: an issuer pin, a required audience, a replay store, refusal
pages and audit events.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.decorators import decorator_from_middleware, method_decorator
from django.views.decorators.csrf import csrf_exempt
from djangosaml2.backends import Saml2Backend
from djangosaml2.middleware import SamlSessionMiddleware
from djangosaml2.views import AssertionConsumerServiceView, LoginView, MetadataView
from saml2 import BINDING_HTTP_POST
from saml2.config import SPConfig
from saml2.response import StatusError, UnsolicitedResponse
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_TRANSIENT, SCM_BEARER
from saml2.sigver import MissingKey, SignatureError, get_xmlsec_binary
from saml2.time_util import str_to_time
from saml2.validate import ResponseLifetimeExceed, ToEarly

from accounts.models import SsoConfiguration
from accounts.sso import services
from accounts.sso.errors import SsoRefusal, sso_error_response

PROTOCOL = "saml"
from accounts.sso.config import sp_entity_id, workspace_sso_configuration  # noqa: E402


def _host(request: HttpRequest) -> str:
    tenant = getattr(request, "tenant", None)
    return getattr(tenant, "domain_url", None) or request.get_host().split(":")[0]


def sp_config_for_request(request: HttpRequest | None = None) -> SPConfig:
    """SAML_CONFIG_LOADER: the pysaml2 SP configuration of the request's workspace."""
    if request is None:
        raise SsoRefusal("not-configured", "no request to choose a workspace")
    config = workspace_sso_configuration(request)
    if config is None or not config.saml_enabled:
        raise SsoRefusal("not-configured")
    acs_url = request.build_absolute_uri(reverse("saml2_acs"))
    tenant = getattr(request, "tenant", None)
    sp_config = SPConfig()
    sp_config.load({
        "entityid": sp_entity_id(_host(request)),
        "xmlsec_binary": settings.SAML_XMLSEC_BINARY or get_xmlsec_binary(["/usr/bin"]),
        "allow_unknown_attributes": True,
        "accepted_time_diff": settings.SSO_CLOCK_SKEW_SECONDS,
        "metadata": {"inline": [config.saml_idp_metadata_xml]},
        "service": {"sp": {
            "name": f"D2R Cloud — {getattr(tenant, 'name', '')}",
            "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
            "idp": [config.saml_idp_entity_id],
            "allow_unsolicited": config.saml_allow_idp_initiated,
            "authn_requests_signed": False,
            "want_assertions_signed": config.saml_want_assertions_signed,
            "want_response_signed": config.saml_want_response_signed,
            # Never accept an unsigned response whatever the two flags say.
            "want_assertions_or_response_signed": True,
            # Trust only the certificates in the stored metadata, never a KeyInfo.
            "only_use_keys_in_metadata": True,
        }},
    })
    return sp_config


def _first(values: Any) -> str:
    if isinstance(values, list | tuple):
        return str(values[0]) if values else ""
    return str(values or "")


def saml_claims(session_info: dict[str, Any], config: SsoConfiguration) -> services.SsoClaims:
    ava: dict[str, list[str]] = session_info.get("ava") or {}
    name_id = session_info.get("name_id")
    name_id_text = (getattr(name_id, "text", None) or "").strip()
    name_id_format = getattr(name_id, "format", None)
    email = _first(ava.get(config.saml_email_attribute)) if config.saml_email_attribute else ""
    if not email and name_id_format == NAMEID_FORMAT_EMAILADDRESS:
        email = name_id_text
    # A transient NameID changes every login: the e-mail then identifies the person.
    subject = name_id_text if name_id_format != NAMEID_FORMAT_TRANSIENT else (
        f"mail:{email.lower()}" if email else "")
    groups = ava.get(config.saml_role_attribute, []) if config.saml_role_attribute else []
    return services.SsoClaims(
        protocol=PROTOCOL, issuer=str(session_info.get("issuer") or ""), subject=subject,
        email=email, first_name=_first(ava.get("givenName")),
        last_name=_first(ava.get("sn") or ava.get("surname")),
        groups=tuple(str(g) for g in groups))


class WorkspaceSaml2Backend(Saml2Backend):
    """Authenticates the person of a verified SAML response into this workspace (JIT)."""

    def authenticate(self, request: Any, session_info: Any = None, attribute_mapping: Any = None,
                     create_unknown_user: Any = True, assertion_info: Any = None,
                     **kwargs: Any) -> Any:
        if request is None or session_info is None:
            return None
        config = workspace_sso_configuration(request)
        if config is None or not config.saml_enabled:
            return None
        try:
            return services.sso_user_provision(
                claims=saml_claims(session_info, config), role_map=config.saml_role_map,
                default_role=config.default_role)
        except SsoRefusal as refusal:
            request.sso_refusal = refusal
            raise


def classify_failure(exception: BaseException | None) -> SsoRefusal:
    """Map what pysaml2/djangosaml2 raised to a stated reason."""
    if isinstance(exception, SsoRefusal):
        return exception
    text = str(exception or "")
    if isinstance(exception, SignatureError | MissingKey):
        reason = "unsigned" if "missing" in text.lower() else "bad-signature"
    elif isinstance(exception, UnsolicitedResponse) or "I don't recall" in text:
        reason = "unsolicited"
    elif isinstance(exception, ResponseLifetimeExceed | ToEarly):
        reason = "expired"
    elif isinstance(exception, StatusError):
        reason = "idp-error"
    elif "AudienceRestrictions" in text:
        reason = "wrong-audience"
    else:
        reason = "invalid-response"
    return SsoRefusal(reason, f"{type(exception).__name__}: {text}")


def _to_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(str_to_time(value)), tz=UTC)


saml_session = decorator_from_middleware(SamlSessionMiddleware)


class _WorkspaceSamlView:
    """Refuses at once when the workspace has no SAML; loads the config per request."""

    config_loader_path = "accounts.sso.saml.sp_config_for_request"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        config = workspace_sso_configuration(request)
        if config is None or not config.saml_enabled:
            return sso_error_response(request, SsoRefusal("not-configured"))
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


@method_decorator(saml_session, name="dispatch")
class SamlLoginView(_WorkspaceSamlView, LoginView):
    """Starts SP-initiated login: redirects to the workspace's IdP with an AuthnRequest."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Always the configured IdP, even when its metadata is an aggregate of many
        # (djangosaml2 would otherwise offer a "where are you from" page).
        config = workspace_sso_configuration(request)
        assert config is not None
        query = request.GET.copy()
        query["idp"] = config.saml_idp_entity_id
        request.GET = query
        return super().get(request, *args, **kwargs)


@method_decorator(saml_session, name="dispatch")
class SamlMetadataView(_WorkspaceSamlView, MetadataView):
    """This workspace's SP metadata (entity id and ACS URL) for the IdP's administrator."""


# No CSRF token can come from the IdP: the signed response's InResponseTo, bound to this
# browser's SAML session, is what ties it to a login started here.
@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(saml_session, name="dispatch")
class SamlAcsView(_WorkspaceSamlView, AssertionConsumerServiceView):
    """Receives the IdP's response; djangosaml2 verifies it, `custom_validation` adds the
    issuer pin, the required audience and the replay store."""

    _refusal: SsoRefusal | None = None

    def custom_validation(self, response: Any) -> None:
        config = workspace_sso_configuration(self.request)
        assert config is not None
        try:
            self._validate(response, config)
        except SsoRefusal as refusal:
            self._refusal = refusal
            raise

    def _validate(self, response: Any, config: SsoConfiguration) -> None:
        assertion = response.assertion
        issuers = {response.issuer(), getattr(assertion.issuer, "text", None)} - {None, ""}
        if issuers != {config.saml_idp_entity_id}:
            raise SsoRefusal("wrong-issuer", f"issuer={sorted(issuers)}")
        me = sp_entity_id(_host(self.request))
        audiences = {
            (audience.text or "").strip()
            for restriction in (getattr(assertion.conditions, "audience_restriction", None)
                                or [])
            for audience in restriction.audience or []
        }
        if me not in audiences:  # pysaml2 accepts an assertion without any audience
            raise SsoRefusal("wrong-audience", f"audiences={sorted(audiences)[:5]}")
        expiries = [_to_datetime(getattr(assertion.conditions, "not_on_or_after", None))]
        expiries += [
            _to_datetime(sc.subject_confirmation_data.not_on_or_after)
            for sc in assertion.subject.subject_confirmation
            if sc.method == SCM_BEARER and sc.subject_confirmation_data is not None
        ]
        known = [e for e in expiries if e is not None]
        if not services.saml_assertion_consume(issuer=config.saml_idp_entity_id,
                                               assertion_id=str(assertion.id),
                                               not_on_or_after=max(known) if known else None):
            raise SsoRefusal("replayed", f"assertion={assertion.id}")

    def handle_acs_failure(self, request: HttpRequest, exception: Any = None, status: int = 403,
                           **kwargs: Any) -> HttpResponse:
        refusal = (self._refusal or getattr(request, "sso_refusal", None)
                   or classify_failure(exception))
        services.sso_failure_record(protocol=PROTOCOL, refusal=refusal,
                                    ip=request.META.get("REMOTE_ADDR", ""))
        return sso_error_response(request, refusal)
