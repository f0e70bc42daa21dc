"""A real OpenID Connect provider for the tests: authlib's authorization server (code
flow, OpenID Connect ID tokens, nonce, PKCE) in a Flask app on a loopback port."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server


@dataclass
class OpClient(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in {"openid", "email", "profile"})

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: dict[str, Any]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None

    def is_expired(self) -> bool:
        return time.time() - self.auth_time > 300


class OidcProvider:
    """The OP. `person` is who is signed in at the OP (tests change it); `id_token_claims`
    overrides claims of the next ID tokens (to forge a wrong `aud` or `iss`)."""

    def __init__(self) -> None:
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain HTTP on loopback only
        self.key = RSAKey.generate_key(2048, parameters={"kid": "op-key-1", "use": "sig",
                                                         "alg": "RS256"})
        self.clients: dict[str, OpClient] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.person: dict[str, Any] = {}
        self.id_token_claims: dict[str, Any] = {}
        self.token_requests: list[dict[str, str]] = []
        self.app = Flask("test-op")
        self._httpd = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._httpd.server_port}"
        self._server = AuthorizationServer(self.app, query_client=self.clients.get,
                                           save_token=self._save_token)
        self._server.register_grant(self._code_grant(), [self._openid(), CodeChallenge(
            required=False)])
        self._routes()
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._thread.join(timeout=5)

    def register(self, client_id: str, secret: str, redirect_uri: str) -> None:
        self.clients[client_id] = OpClient(client_id, secret, [redirect_uri])

    def _save_token(self, token: dict[str, Any], oauth_request: Any) -> None:
        self.tokens[token["access_token"]] = {"user": oauth_request.user,
                                              "scope": token.get("scope", "")}

    def _code_grant(self) -> type[grants.AuthorizationCodeGrant]:
        provider = self

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code: str, oauth_request: Any) -> None:
                data = oauth_request.payload.data
                provider.codes[code] = AuthorizationCode(
                    code=code, client_id=oauth_request.client.client_id,
                    redirect_uri=oauth_request.payload.redirect_uri,
                    scope=oauth_request.scope, user=oauth_request.user,
                    nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"))

            def query_authorization_code(self, code: str, client: OpClient) -> Any:
                item = provider.codes.get(code)
                return item if item and item.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: Any) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Any) -> Any:
                return authorization_code.user

        return CodeGrant

    def _openid(self) -> OpenIDCode:
        provider = self

        class Code(OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, oauth_request: Any) -> bool:
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client: OpClient) -> RSAKey:
                return provider.key

            def get_client_algorithm(self, client: OpClient) -> str:
                return "RS256"

            def get_encode_header(self, client: OpClient) -> dict[str, str]:
                return {"alg": "RS256", "kid": provider.key.kid or ""}

            def get_client_claims(self, client: OpClient) -> dict[str, Any]:
                return {"iss": provider.issuer, "aud": [client.get_client_id()],
                        **provider.id_token_claims}

            def generate_user_info(self, user: dict[str, Any], scope: str) -> UserInfo:
                return UserInfo(user)

        return Code(require_nonce=True)

    def _routes(self) -> None:
        app, server, provider = self.app, self._server, self

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            return jsonify({
                "issuer": provider.issuer,
                "authorization_endpoint": f"{provider.issuer}/authorize",
                "token_endpoint": f"{provider.issuer}/token",
                "userinfo_endpoint": f"{provider.issuer}/userinfo",
                "jwks_uri": f"{provider.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                          "client_secret_post"],
            })

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify({"keys": [provider.key.as_dict(private=False)]})

        @app.get("/authorize")
        def authorize() -> Any:
            # The person is already signed in at the OP and consents at once.
            grant = server.get_consent_grant(end_user=dict(provider.person))
            return server.create_authorization_response(grant_user=dict(provider.person),
                                                        grant=grant)

        @app.post("/token")
        def token() -> Any:
            provider.token_requests.append(dict(request.form))
            return server.create_token_response()

        @app.get("/userinfo")
        def userinfo() -> Any:
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
            issued = provider.tokens.get(bearer)
            if issued is None:
                return jsonify({"error": "invalid_token"}), 401
            return jsonify(dict(issued["user"]))
