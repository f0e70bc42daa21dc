"""Writes for SSO: configuration, just-in-time provisioning, the assertion replay store,
failure records. Each write that touches the database is one transaction with its
audit event (accounts.events)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts import events
from accounts.models import Membership, RefreshToken, SsoConfiguration, SsoIdentity
from accounts.roles import Role
from accounts.sso.crypto import secret_decrypt, secret_encrypt
from accounts.sso.errors import SsoRefusal
from accounts.sso.selectors import sso_role_resolve
from audit import tracking

MAX_METADATA_BYTES = 2 * 1024 * 1024
REPLAY_MIN_SECONDS = 300
REPLAY_MAX_SECONDS = 7 * 24 * 3600


def _secret_context() -> str:
    return f"{connection.schema_name}:oidc_client_secret"


def oidc_client_secret_get(config: SsoConfiguration) -> str:
    """The decrypted OIDC client secret ('' when none is stored)."""
    if not config.oidc_client_secret_encrypted:
        return ""
    return secret_decrypt(config.oidc_client_secret_encrypted, context=_secret_context())


def sso_configuration_save(*, configuration: SsoConfiguration, client_secret: str | None,
                           actor: str) -> SsoConfiguration:
    """Save the workspace's SSO configuration (already validated by `full_clean`).

    A new client secret is encrypted; None or '' keeps the stored one. Turning
    `sso_required` on revokes every refresh token except the break-glass owner's, since
    all of them were issued to password logins; browser sessions are refused by
    `SsoRequiredMiddleware` on their next request.
    """
    with transaction.atomic(), tracking.recorded_by_caller(SsoConfiguration) as changes:
        previous = SsoConfiguration.objects.select_for_update().filter(pk=1).first()
        configuration.pk = 1
        if client_secret:
            configuration.oidc_client_secret_encrypted = secret_encrypt(
                client_secret, context=_secret_context())
        configuration.save()
        revoked = 0
        if configuration.sso_required and not (previous and previous.sso_required):
            revoked = (RefreshToken.objects.filter(revoked_at=None)
                       .exclude(user_id=configuration.break_glass_user_id)
                       .update(revoked_at=timezone.now()))
        events.auth_event(
            "sso.configure", actor=actor, subject_id=configuration.pk,
            saml_enabled=configuration.saml_enabled, oidc_enabled=configuration.oidc_enabled,
            sso_required=configuration.sso_required,
            saml_idp_entity_id=configuration.saml_idp_entity_id,
            oidc_issuer=configuration.oidc_issuer,
            client_secret_changed=bool(client_secret), refresh_tokens_revoked=revoked,
            rows=tracking.rows(changes))
    return configuration


def saml_metadata_fetch(*, url: str) -> str:
    """Download IdP metadata (HTTPS unless SSO_ALLOW_HTTP_PROVIDERS; ≤ 2 MB; no redirects)."""
    if not url.startswith("https://") and not settings.SSO_ALLOW_HTTP_PROVIDERS:
        raise ValidationError("The metadata URL must use HTTPS.")
    try:
        with requests.get(url, timeout=settings.SSO_HTTP_TIMEOUT, stream=True,
                          allow_redirects=False) as response:
            response.raise_for_status()
            body = response.raw.read(MAX_METADATA_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise ValidationError(f"The metadata could not be fetched: {exc}") from exc
    if len(body) > MAX_METADATA_BYTES:
        raise ValidationError("The metadata is larger than 2 MB.")
    return body.decode("utf-8", errors="replace")


def saml_assertion_consume(*, issuer: str, assertion_id: str,
                           not_on_or_after: datetime | None) -> bool:
    """Mark an assertion as used; False when it was already used (a replay).

    djangosaml2 has no replay protection of its own. The id is kept in Redis (SET NX, so
    two concurrent posts cannot both win) until the assertion expires plus the clock
    skew pysaml2 tolerates; cache keys carry the workspace (django-tenants' key
    function). Redis unavailable raises: the login fails closed.
    """
    ttl = REPLAY_MIN_SECONDS
    if not_on_or_after is not None:
        remaining = (not_on_or_after - timezone.now()).total_seconds()
        ttl = min(max(ttl, math.ceil(remaining) + settings.SSO_CLOCK_SKEW_SECONDS),
                  REPLAY_MAX_SECONDS)
    digest = hashlib.sha256(f"{issuer}\n{assertion_id}".encode()).hexdigest()
    return bool(cache.add(f"sso:saml:seen:{digest}", 1, timeout=ttl))


@dataclass(frozen=True)
class SsoClaims:
    """What an IdP asserted about a person, in protocol-neutral form."""

    protocol: str  # SsoIdentity.Protocol
    issuer: str
    subject: str
    email: str = ""
    email_verified: bool | None = None
    first_name: str = ""
    last_name: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)

    @property
    def actor(self) -> str:
        return self.email or self.subject


def sso_user_provision(*, claims: SsoClaims, role_map: list[list[str]],
                       default_role: str) -> Any:
    """Just-in-time provisioning: find or create the user and set the mapped role.

    Lookup order: the linked SSO identity; else one user whose e-mail or username is the
    asserted e-mail (unless the IdP says it is unverified); else a new user with an
    unusable password. The role is re-mapped on every login (a person removed from an
    IdP group loses the role at their next login); owners are never changed by SSO.
    Idempotent per login; one transaction with the `sso.login` event, which carries the
    user's and the membership's changes. Raises SsoRefusal.
    """
    if not claims.subject:
        raise SsoRefusal("no-identity", actor=claims.actor)
    role = sso_role_resolve(role_map, claims.groups, default_role)
    user_model = get_user_model()
    email = claims.email.strip().lower()
    with transaction.atomic(), tracking.recorded_by_caller(user_model, Membership) as changes:
        identity = (SsoIdentity.objects.select_for_update().select_related("user")
                    .filter(protocol=claims.protocol, issuer=claims.issuer,
                            subject=claims.subject).first())
        created = False
        if identity is not None:
            user = identity.user
        else:
            user = None
            if email and claims.email_verified is not False:
                matches = list(user_model.objects.filter(
                    Q(email__iexact=email) | Q(username__iexact=email))[:2])
                if len(matches) > 1:
                    raise SsoRefusal("identity-conflict", actor=claims.actor)
                user = matches[0] if matches else None
            if user is None:
                username = (email or f"{claims.protocol}:{claims.subject}")[:150]
                if user_model.objects.filter(username__iexact=username).exists():
                    raise SsoRefusal("identity-conflict", "unverified e-mail of a user",
                                     actor=claims.actor)
                user = user_model(username=username, email=email)
                user.set_unusable_password()
                created = True
        if not user.is_active:
            raise SsoRefusal("user-inactive", actor=claims.actor)
        membership = Membership.objects.select_for_update().filter(user_id=user.pk).first()
        previous_role = membership.role if membership else None
        if previous_role == Role.OWNER:
            role = Role.OWNER
        elif role is None:
            raise SsoRefusal("no-role", f"groups={list(claims.groups)[:20]}",
                             actor=claims.actor)
        for attr, value in (("email", email), ("first_name", claims.first_name[:150]),
                            ("last_name", claims.last_name[:150])):
            if value:
                setattr(user, attr, value)
        user.save()
        if identity is None:
            identity = SsoIdentity(user=user, protocol=claims.protocol, issuer=claims.issuer,
                                   subject=claims.subject)
        identity.last_login_at = timezone.now()
        identity.save()
        Membership.objects.update_or_create(user=user, defaults={"role": role})
        events.auth_event("sso.login", actor=user.username, subject_id=user.pk,
                          protocol=claims.protocol, issuer=claims.issuer, role=str(role),
                          previous_role=previous_role, user_created=created,
                          rows=tracking.rows(changes))
    return user


def sso_failure_record(*, protocol: str, refusal: SsoRefusal, ip: str = "") -> None:
    """Record a refused SSO login (its own transaction: the login itself rolled back)."""
    with transaction.atomic():
        events.auth_event("sso.failure", actor=refusal.actor or "anonymous",
                          protocol=protocol, reason=refusal.reason,
                          detail=refusal.log_detail, ip=ip)


def sso_configuration_delete(*, actor: str) -> None:
    """Remove the workspace's SSO (password logins work again for everyone)."""
    with transaction.atomic(), tracking.recorded_by_caller(SsoConfiguration) as changes:
        deleted, _ = SsoConfiguration.objects.filter(pk=1).delete()
        if deleted:
            events.auth_event("sso.configure", actor=actor, subject_id=1, deleted=True,
                              rows=tracking.rows(changes))
