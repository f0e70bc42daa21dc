"""Credentials of API clients: API keys, user access tokens, device-signed tokens.

`resolve_request_credential` is the tenants middleware's resolver: it reads the
`Authorization` header, verifies the credential completely, and returns the workspace
it belongs to (the host may then only be that workspace's). The verified principal is
left on the request for `CredentialAuthentication`. Any defect is a CredentialError,
answered 401 problem+json with the reason; nothing is served.

Formats (ADR 0002):
- API key:  `Authorization: Api-Key d2rk.<schema>.<prefix>.<secret>`
- user JWT: `Authorization: Bearer <EdDSA JWT, kid of a platform key, claim tnt>`
- device:   `Authorization: Bearer <JWT signed by the device, kid device:<schema>:<uid>>`
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts import jwt_keys
from accounts.roles import Capability, Role, role_can
from tenants.credentials import CredentialError
from tenants.models import Tenant

API_KEY_RE = re.compile(r"^d2rk\.([a-z][a-z0-9_]{1,39})\.([0-9a-f]{12})\.([A-Za-z0-9_-]{43})$")
DEVICE_KID_RE = re.compile(r"^device:([a-z][a-z0-9_]{1,39}):([0-9a-f-]{36})$")
SCHEMES = {"api-key", "bearer"}


@dataclass(frozen=True)
class Principal:
    """Who is calling, as DRF's `request.auth`: role and optional scope narrowing."""

    kind: str  # "api_key" | "user_token" | "device_token"
    role: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    api_key_id: int | None = None
    device_id: int | None = None
    user_id: int | None = None

    def allows(self, capability: Capability) -> bool:
        if self.scopes and capability.value not in self.scopes:
            return False
        return role_can(self.role, capability)


@dataclass
class MachineUser:
    """`request.user` for keys and devices: authenticated, but not a person."""

    name: str
    device_id: int | None = None
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    is_anonymous: bool = False
    pk: None = None

    def __str__(self) -> str:
        return self.name


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def parse_authorization(header: str) -> tuple[str, str]:
    """`(scheme, credential)` from an Authorization header, or CredentialError."""
    if len(header) > settings.MAX_TOKEN_BYTES + 32:
        raise CredentialError("The Authorization header is too large.")
    if not header.isascii() or header != header.strip():
        raise CredentialError("The Authorization header is malformed.")
    parts = header.split(" ")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise CredentialError("Use `Authorization: Api-Key <key>` or `Bearer <token>`.")
    scheme = parts[0].lower()
    if scheme not in SCHEMES:
        raise CredentialError(f"Unsupported authorization scheme {parts[0]!r}.")
    return scheme, parts[1]


def _active_tenant(schema: str) -> Tenant:
    tenant = Tenant.objects.filter(schema_name=schema).select_related("plan").first()
    if tenant is None:
        raise CredentialError("The credential is not valid.")
    return tenant


# --- API keys -------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedKey:
    key: str  # shown once
    prefix: str
    api_key_id: int


def api_key_issue(
    *,
    schema: str,
    name: str,
    role: str,
    scopes: list[str] | None = None,
    expires_at: Any = None,
    device_id: int | None = None,
    created_by_id: int | None = None,
) -> IssuedKey:
    """Create a key in the current workspace (`schema`); the plaintext is returned once."""
    from accounts.models import ApiKey

    Role(role)  # refuses unknown roles
    for scope in scopes or []:
        Capability(scope)
    prefix = secrets.token_hex(6)
    key = f"d2rk.{schema}.{prefix}.{secrets.token_urlsafe(32)}"
    row = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        key_hash=hash_secret(key),
        role=role,
        scopes=sorted(scopes or []),
        expires_at=expires_at,
        device_id=device_id,
        created_by_id=created_by_id,
    )
    return IssuedKey(key=key, prefix=prefix, api_key_id=row.pk)


def _verify_api_key(value: str) -> tuple[Tenant, Principal, MachineUser]:
    from accounts.models import ApiKey

    match = API_KEY_RE.match(value)
    if not match:
        raise CredentialError("The API key is malformed.")
    schema, prefix, _ = match.groups()
    tenant = _active_tenant(schema)
    now = timezone.now()
    with tenant_context(tenant):
        key = ApiKey.objects.select_related("device").filter(prefix=prefix).first()
        if key is None or not hmac.compare_digest(key.key_hash, hash_secret(value)):
            raise CredentialError("The API key is not valid.")
        if key.device is not None and key.device.state != "active":
            raise CredentialError(f"The device is {key.device.state}.", slug="device-refused")
        if key.revoked_at is not None:
            raise CredentialError("The API key has been revoked.")
        if key.expires_at is not None and key.expires_at <= now:
            raise CredentialError("The API key has expired.")
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    principal = Principal(
        "api_key", key.role, frozenset(key.scopes), api_key_id=key.pk, device_id=key.device_id
    )
    label = f"device:{key.device.serial}" if key.device else f"api-key:{key.prefix}"
    return tenant, principal, MachineUser(label, device_id=key.device_id)


# --- User access tokens ---------------------------------------------------------------


def access_token_issue(*, user: Any, schema: str, role: str) -> str:
    """A short-lived EdDSA access token for `user` of workspace `schema`."""
    key = jwt_keys.active_key()
    now = timezone.now()
    claims = {
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "sub": str(user.pk),
        "tnt": schema,
        "role": role,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.JWT_ACCESS_SECONDS)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(
        claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid, "typ": "at+jwt"}
    )


def _decode(token: str, key: Any, algorithm: str, **require: Any) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key=key,
            algorithms=[algorithm],
            audience=settings.JWT_AUDIENCE,
            leeway=settings.JWT_LEEWAY_SECONDS,
            options={
                "require": ["exp", "iat", "nbf", "aud", *require.get("claims", [])],
                "verify_signature": True,
            },
            **({"issuer": require["issuer"]} if "issuer" in require else {}),
        )
    except jwt.ExpiredSignatureError as exc:
        raise CredentialError("The token has expired.") from exc
    except jwt.ImmatureSignatureError as exc:
        raise CredentialError("The token is not valid yet.") from exc
    except jwt.InvalidAudienceError as exc:
        raise CredentialError("The token is for another audience.") from exc
    except jwt.InvalidIssuerError as exc:
        raise CredentialError("The token has an unknown issuer.") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise CredentialError(f"The token lacks the {exc.claim!r} claim.") from exc
    except jwt.InvalidSignatureError as exc:
        raise CredentialError("The token's signature is not valid.") from exc
    except jwt.PyJWTError as exc:
        raise CredentialError("The token is not valid.") from exc


def _verify_bearer(token: str) -> tuple[Tenant, Principal, Any]:
    if len(token) > settings.MAX_TOKEN_BYTES:
        raise CredentialError("The token is too large.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise CredentialError("The token is malformed.") from exc
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise CredentialError("The token has no key id.")
    if kid.startswith("device:"):
        return _verify_device_token(token, kid, header.get("alg"))
    if header.get("alg") != "EdDSA":  # pinned: `none`, HS256 (key confusion) never accepted
        raise CredentialError(f"The token's algorithm {header.get('alg')!r} is not accepted.")
    key = jwt_keys.verification_key(kid)
    if key is None:
        raise CredentialError("The token's key id is unknown.")
    claims = _decode(
        token, key.public_key, "EdDSA", issuer=settings.JWT_ISSUER, claims=["iss", "sub", "tnt"]
    )
    tenant = _active_tenant(str(claims["tnt"]))
    with tenant_context(tenant):
        user = get_user_model().objects.filter(pk=claims["sub"], is_active=True).first()
        if user is None:
            raise CredentialError("The token's user no longer exists or is inactive.")
        from accounts.permissions import user_role

        role = user_role(user)
    if role is None:
        raise CredentialError(
            "The token's user has no role in this workspace.", slug="permission-denied"
        )
    return tenant, Principal("user_token", role, user_id=user.pk), user


def _verify_device_token(token: str, kid: str, algorithm: Any) -> tuple[Tenant, Principal, Any]:
    from devices.models import Device

    match = DEVICE_KID_RE.match(kid)
    if not match:
        raise CredentialError("The device key id is malformed.")
    schema, uid = match.groups()
    tenant = _active_tenant(schema)
    with tenant_context(tenant):
        device = Device.objects.filter(uid=uid).first()
    if device is None or not device.public_key_pem:
        raise CredentialError("The device is not registered with a key.")
    if device.state != Device.State.ACTIVE:
        raise CredentialError(f"The device is {device.state}.", slug="device-refused")
    public_key = serialization.load_pem_public_key(device.public_key_pem.encode())
    expected = (
        "EdDSA"
        if isinstance(public_key, ed25519.Ed25519PublicKey)
        else "ES256"
        if isinstance(public_key, ec.EllipticCurvePublicKey)
        else None
    )
    if expected is None or algorithm != expected:
        raise CredentialError(f"The token's algorithm {algorithm!r} is not accepted.")
    claims = _decode(token, public_key, expected, claims=["jti"])
    if claims["exp"] - claims["iat"] > settings.DEVICE_JWT_MAX_LIFETIME_SECONDS:
        raise CredentialError("Device tokens may live at most five minutes.")
    ttl = max(1, int(claims["exp"] - timezone.now().timestamp()) + settings.JWT_LEEWAY_SECONDS)
    with tenant_context(tenant):  # single use: the cache key carries the tenant
        if not cache.add(f"device-jti:{device.uid}:{claims['jti']}", 1, timeout=ttl):
            raise CredentialError("The device token was already used.")
    principal = Principal("device_token", Role.OPERATOR.value, device_id=device.pk)
    return tenant, principal, MachineUser(f"device:{device.serial}", device_id=device.pk)


# --- The middleware's resolver --------------------------------------------------------


def _verify_client_certificate(value: str) -> tuple[Tenant, Principal, MachineUser]:
    from devices import pki

    try:
        schema, uid, cert = pki.parse_forwarded_certificate(value)
    except pki.CertificateError as exc:
        raise CredentialError(str(exc)) from exc
    tenant = _active_tenant(schema)
    with tenant_context(tenant):
        try:
            device = pki.certificate_verify(cert, uid)
        except pki.CertificateError as exc:
            raise CredentialError(str(exc)) from exc
    if device.state != "active":
        raise CredentialError(f"The device is {device.state}.", slug="device-refused")
    principal = Principal("device_certificate", Role.OPERATOR.value, device_id=device.pk)
    return tenant, principal, MachineUser(f"device:{device.serial}", device_id=device.pk)


def resolve_request_credential(request: HttpRequest) -> Tenant | None:
    """The workspace of the request's credential, or None when it carries none.

    `Authorization` wins; otherwise a client certificate forwarded by the TLS proxy, in
    the header named by DEVICE_CERT_HEADER (only set behind a proxy that strips it from
    clients and verifies the certificate chain).
    """
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is None:
        cert_header = settings.DEVICE_CERT_HEADER
        value = (
            request.META.get(f"HTTP_{cert_header.upper().replace('-', '_')}")
            if (cert_header)
            else None
        )
        if not value:
            return None
        tenant, principal, user = _verify_client_certificate(value)
        request.d2r_principal = principal  # type: ignore[attr-defined]
        request.d2r_principal_user = user  # type: ignore[attr-defined]
        return tenant
    scheme, value = parse_authorization(header)
    if scheme == "api-key":
        tenant, principal, user = _verify_api_key(value)
    else:
        tenant, principal, user = _verify_bearer(value)
    request.d2r_principal = principal  # type: ignore[attr-defined]
    request.d2r_principal_user = user  # type: ignore[attr-defined]
    return tenant
