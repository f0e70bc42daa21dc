"""Checks of an SSO configuration before it is saved (the model's `clean`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from accounts.roles import Role

if TYPE_CHECKING:
    from accounts.models import SsoConfiguration

MAPPABLE_ROLES = frozenset(r.value for r in Role if r is not Role.OWNER)


def role_map_errors(value: Any) -> list[str]:
    """A role map is an ordered list of [value, role] pairs; owner is never mapped."""
    if not isinstance(value, list):
        return ['Use a list of ["value", "role"] pairs.']
    errors = []
    for item in value:
        if (not isinstance(item, list) or len(item) != 2
                or not all(isinstance(part, str) and part for part in item)):
            errors.append(f"{item!r} is not a [\"value\", \"role\"] pair.")
        elif item[1] not in MAPPABLE_ROLES:
            errors.append(f"{item[1]!r} cannot be granted by SSO; use one of "
                          f"{', '.join(sorted(MAPPABLE_ROLES))}.")
    return errors


def saml_metadata_errors(xml: str, entity_id: str) -> list[str]:
    """The metadata must parse and describe `entity_id` as an IdP with a signing key."""
    from saml2.attribute_converter import ac_factory
    from saml2.mdstore import InMemoryMetaData

    try:
        metadata = InMemoryMetaData(ac_factory(), xml)
        metadata.load()
    except Exception as exc:  # noqa: BLE001 — pysaml2 raises many kinds for bad XML
        return [f"The metadata could not be read: {exc}"[:300]]
    if entity_id not in metadata.keys():
        found = ", ".join(sorted(metadata.keys())[:5]) or "none"
        return [f"The metadata does not describe {entity_id!r} (it describes: {found})."]
    if not metadata.any("idpsso_descriptor", "single_sign_on_service"):
        return ["The metadata has no identity provider SSO endpoint."]
    if not metadata.certs(entity_id, "idpsso", "signing"):
        return ["The metadata has no signing certificate for the identity provider."]
    return []


def sso_configuration_errors(config: SsoConfiguration) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    for field in ("saml_role_map", "oidc_role_map"):
        for message in role_map_errors(getattr(config, field)):
            add(field, message)
    if not (config.saml_want_assertions_signed or config.saml_want_response_signed):
        add("saml_want_assertions_signed", "Require signed assertions, signed responses or "
            "both: unsigned SAML is never accepted.")
    if config.saml_enabled:
        if not config.saml_idp_entity_id:
            add("saml_idp_entity_id", "Required when SAML is enabled.")
        if not config.saml_idp_metadata_xml:
            add("saml_idp_metadata_xml", "Upload the IdP metadata or give its URL.")
        elif config.saml_idp_entity_id:
            for message in saml_metadata_errors(config.saml_idp_metadata_xml,
                                                config.saml_idp_entity_id):
                add("saml_idp_metadata_xml", message)
    if config.oidc_enabled:
        if not config.oidc_issuer:
            add("oidc_issuer", "Required when OIDC is enabled.")
        if not config.oidc_client_id:
            add("oidc_client_id", "Required when OIDC is enabled.")
        if "openid" not in config.oidc_scopes.split():
            add("oidc_scopes", "The scopes must include `openid`.")
    if config.sso_required:
        if not (config.saml_enabled or config.oidc_enabled):
            add("sso_required", "Enable SAML or OIDC before requiring SSO.")
        if config.break_glass_user_id is None:
            add("break_glass_user", "Name a break-glass owner, so that the workspace "
                "stays reachable if the identity provider fails.")
    if config.break_glass_user_id is not None:
        from accounts.models import Membership

        if not Membership.objects.filter(user_id=config.break_glass_user_id,
                                         role=Role.OWNER).exists():
            add("break_glass_user", "The break-glass account must be an owner.")
    return errors
