"""OpenID Connect per workspace on top of mozilla-django-oidc.

mozilla-django-oidc reads its OP endpoints, client id and secret from settings; the
subclasses here take them from the workspace's `SsoConfiguration` and the OP's
discovery document on every request. They also close what the library leaves open:
the ID token's `aud`, `iss`, `exp`, `iat` are required and checked (the library skips
`aud`), the algorithm is pinned to asymmetric ones the OP advertises, the nonce is
always required, and PKCE (S256) is on by default.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.views.generic import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from accounts.models import SsoConfiguration
from accounts.sso import services
from accounts.sso.config import workspace_sso_configuration
from accounts.sso.crypto import SecretUnreadable
from accounts.sso.errors import SsoRefusal, sso_error_response

PROTOCOL = "oidc"
# Asymmetric only: an HS256 ID token would be verified with the client secret, which
# every holder of the secret could forge.
ALLOWED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                "ES256", "ES384", "ES512", "EdDSA"})
DISCOVERY_TTL = 3600
JWKS_TTL = 600
MAX_ID_TOKEN_BYTES = 16 * 1024


def _cache_key(kind: str, url: str) -> str:
    return f"sso:oidc:{kind}:{hashlib.sha256(url.encode()).hexdigest()}"


def _require_https(url: str) -> None:
    if not url.startswith("https://") and not settings.SSO_ALLOW_HTTP_PROVIDERS:
        raise SsoRefusal("provider-unavailable", f"not https: {url[:200]}")


def _fetch_json(url: str) -> dict[str, Any]:
    _require_https(url)
    try:
        response = requests.get(url, timeout=settings.SSO_HTTP_TIMEOUT, allow_redirects=False)
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise SsoRefusal("provider-unavailable", f"{url[:200]}: {exc}"[:400]) from exc
    if not isinstance(data, dict):
        raise SsoRefusal("provider-unavailable", f"{url[:200]}: not a JSON object")
    return data


def oidc_provider_metadata(issuer: str) -> dict[str, Any]:
    """The OP's discovery document, cached for an hour (keys carry the workspace).

    The document must name exactly the configured issuer (mix-up defence) and give
    HTTPS authorization, token and JWKS endpoints.
    """
    key = _cache_key("discovery", issuer)
    document = cache.get(key)
    if document is None:
        document = _fetch_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if document.get("issuer") != issuer:
            raise SsoRefusal("wrong-issuer", f"discovery names {document.get('issuer')!r}")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(name), str):
                raise SsoRefusal("provider-unavailable", f"discovery lacks {name}")
            _require_https(document[name])
        cache.set(key, document, DISCOVERY_TTL)
    return document


def oidc_signing_key(jwks_uri: str, header: dict[str, Any]) -> jwt.PyJWK:
    """The OP key named by the token's `kid` (JWKS cached; fetched again once on a miss,
    so a key rotation at the OP is picked up at once)."""
    key = _cache_key("jwks", jwks_uri)
    for attempt in range(2):
        jwks = cache.get(key) if attempt == 0 else None
        if jwks is None:
            jwks = _fetch_json(jwks_uri)
            cache.set(key, jwks, JWKS_TTL)
        for candidate in jwks.get("keys", []):
            if not isinstance(candidate, dict) or candidate.get("use", "sig") != "sig":
                continue
            if header.get("kid") is not None and candidate.get("kid") != header.get("kid"):
                continue
            if candidate.get("alg", header["alg"]) != header["alg"]:
                continue
            try:
                return jwt.PyJWK(candidate, algorithm=header["alg"])
            except jwt.PyJWKError as exc:
                raise SsoRefusal("bad-token", f"unusable JWK: {exc}") from exc
    raise SsoRefusal("bad-token", f"no OP key with kid {header.get('kid')!r}")


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (`realm_access.roles` for Keycloak)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    return None


class WorkspaceOidcBackend(OIDCAuthenticationBackend):
    """Authenticates the OIDC callback of this workspace: token exchange, ID token
    verification, then just-in-time provisioning with the mapped role."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The library reads OP endpoints and client credentials from settings here;
        # they are per workspace, so they are set in `authenticate`.
        self.UserModel = get_user_model()
        self._settings: dict[str, Any] = {}

    def get_settings(self, attr: str, *args: Any) -> Any:  # type: ignore[override]
        if attr in self._settings:
            return self._settings[attr]
        return import_from_settings(attr, *args)

    def _configure(self, config: SsoConfiguration) -> None:
        document = oidc_provider_metadata(config.oidc_issuer)
        try:
            secret = services.oidc_client_secret_get(config)
        except SecretUnreadable as exc:
            raise SsoRefusal("provider-unavailable", f"client secret: {exc}") from exc
        self.config = config
        self.document = document
        self.OIDC_OP_TOKEN_ENDPOINT = document["token_endpoint"]
        self.OIDC_OP_USER_ENDPOINT = document.get("userinfo_endpoint")
        self.OIDC_OP_JWKS_ENDPOINT = document["jwks_uri"]
        self.OIDC_RP_CLIENT_ID = config.oidc_client_id
        self.OIDC_RP_CLIENT_SECRET = secret
        self.OIDC_RP_SIGN_ALGO = "RS256"
        self.OIDC_RP_IDP_SIGN_KEY = None
        methods = document.get("token_endpoint_auth_methods_supported",
                               ["client_secret_basic"])
        self._settings = {
            "OIDC_RP_SCOPES": config.oidc_scopes,
            "OIDC_USE_NONCE": True,
            "OIDC_TOKEN_USE_BASIC_AUTH": "client_secret_basic" in methods,
            "OIDC_TIMEOUT": settings.SSO_HTTP_TIMEOUT,
            "OIDC_VERIFY_SSL": True,
        }

    def authenticate(self, request: Any, **kwargs: Any) -> Any:
        if request is None or "nonce" not in kwargs:
            return None  # not an OIDC callback (a password or SAML login)
        config = workspace_sso_configuration(request)
        if config is None or not config.oidc_enabled:
            return None
        try:
            self._configure(config)
            return super().authenticate(request, **kwargs)
        except SsoRefusal as refusal:
            request.sso_refusal = refusal
            raise
        except requests.HTTPError as exc:
            request.sso_refusal = SsoRefusal("token-exchange-failed", str(exc))
            raise request.sso_refusal from exc
        except requests.RequestException as exc:
            request.sso_refusal = SsoRefusal("provider-unavailable", str(exc))
            raise request.sso_refusal from exc

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """Verify an ID token: pinned asymmetric algorithm, OP key by kid, required
        iss/aud/exp/iat/sub, azp when several audiences, and the login's nonce."""
        if not token or len(token) > MAX_ID_TOKEN_BYTES:
            raise SsoRefusal("bad-token", "missing or oversized id_token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise SsoRefusal("bad-token", f"header: {exc}") from exc
        advertised = set(self.document.get("id_token_signing_alg_values_supported", ["RS256"]))
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS & advertised:
            raise SsoRefusal("bad-token", f"algorithm {algorithm!r} not accepted")
        key = oidc_signing_key(self.OIDC_OP_JWKS_ENDPOINT, header)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[algorithm], audience=self.OIDC_RP_CLIENT_ID,
                issuer=self.config.oidc_issuer, leeway=settings.SSO_CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]})
        except jwt.InvalidTokenError as exc:
            raise SsoRefusal("bad-token", f"{type(exc).__name__}: {exc}") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SsoRefusal("bad-token", "azp is not this client")
        if "nonce" in kwargs and (not kwargs["nonce"] or claims.get("nonce") != kwargs["nonce"]):
            raise SsoRefusal("bad-nonce", actor=str(claims.get("email") or claims["sub"]))
        return claims

    def get_userinfo(self, access_token: str, id_token: str,
                     payload: dict[str, Any]) -> dict[str, Any]:
        if not self.OIDC_OP_USER_ENDPOINT:
            return {}
        _require_https(self.OIDC_OP_USER_ENDPOINT)
        info = super().get_userinfo(access_token, id_token, payload)
        return info if isinstance(info, dict) else {}

    def get_or_create_user(self, access_token: str, id_token: str,
                           payload: dict[str, Any]) -> Any:
        info = self.get_userinfo(access_token, id_token, payload)
        if info.get("sub", payload["sub"]) != payload["sub"]:
            raise SsoRefusal("bad-token", "userinfo is about another subject")
        claims = {**info, **payload}  # the signed ID token wins over userinfo
        config = self.config
        groups = _claim(claims, config.oidc_role_claim) if config.oidc_role_claim else None
        if isinstance(groups, str):
            groups = [groups]
        return services.sso_user_provision(
            claims=services.SsoClaims(
                protocol=PROTOCOL, issuer=config.oidc_issuer, subject=str(payload["sub"]),
                email=str(claims.get("email") or ""),
                email_verified=_as_bool(claims.get("email_verified")),
                first_name=str(claims.get("given_name") or ""),
                last_name=str(claims.get("family_name") or ""),
                groups=tuple(str(g) for g in groups or [])),
            role_map=config.oidc_role_map, default_role=config.default_role)


def _refuse(request: HttpRequest, refusal: SsoRefusal) -> HttpResponse:
    services.sso_failure_record(protocol=PROTOCOL, refusal=refusal,
                                ip=request.META.get("REMOTE_ADDR", ""))
    return sso_error_response(request, refusal)


class OidcLoginView(OIDCAuthenticationRequestView):
    """Redirects to the workspace's OP with state, nonce and (by default) PKCE S256."""

    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)  # the library would read OP settings here
        self._settings: dict[str, Any] = {}

    def get_settings(self, attr: str, *args: Any) -> Any:  # type: ignore[override]
        if attr in self._settings:
            return self._settings[attr]
        return import_from_settings(attr, *args)

    def get(self, request: HttpRequest) -> HttpResponse:
        config = workspace_sso_configuration(request)
        if config is None or not config.oidc_enabled:
            return sso_error_response(request, SsoRefusal("not-configured"))
        try:
            document = oidc_provider_metadata(config.oidc_issuer)
        except SsoRefusal as refusal:
            return _refuse(request, refusal)
        self.OIDC_OP_AUTH_ENDPOINT = document["authorization_endpoint"]
        self.OIDC_RP_CLIENT_ID = config.oidc_client_id
        self._settings = {
            "OIDC_RP_SCOPES": config.oidc_scopes,
            "OIDC_USE_NONCE": True,
            "OIDC_USE_PKCE": config.oidc_use_pkce,
            "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        }
        return super().get(request)


class OidcCallbackView(OIDCAuthenticationCallbackView):
    """The OP's redirect back: state checked against this browser's session, then the
    backend exchanges the code and verifies the ID token. Refusals get a page and an
    `sso.failure` event."""

    def get(self, request: HttpRequest) -> HttpResponse:
        config = workspace_sso_configuration(request)
        if config is None or not config.oidc_enabled:
            return sso_error_response(request, SsoRefusal("not-configured"))
        if request.GET.get("error"):
            request.sso_refusal = SsoRefusal(  # type: ignore[attr-defined]
                "idp-error", f"{request.GET['error']}: "
                f"{request.GET.get('error_description', '')}"[:300])
            return super().get(request)  # drops the state, logs out, then login_failure
        state = request.GET.get("state")
        states = request.session.get("oidc_states")
        if not request.GET.get("code") or not state or not isinstance(states, dict) \
                or state not in states:
            return _refuse(request, SsoRefusal("bad-state"))
        return super().get(request)

    def login_failure(self) -> HttpResponse:
        refusal = getattr(self.request, "sso_refusal", None) or SsoRefusal("invalid-response")
        return _refuse(self.request, refusal)
