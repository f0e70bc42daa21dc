"""Identity API: tokens, JWKS, the caller, API keys."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.db import connection, transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import events, jwt_keys, services
from accounts.api.v1 import serializers as s
from accounts.authentication import CredentialAuthentication
from accounts.credentials import CredentialError, api_key_issue
from accounts.models import ApiKey
from accounts.permissions import needs, request_allows, user_role
from accounts.roles import ROLE_CAPABILITIES, Capability, Role
from accounts.sso.policy import password_login_refused
from accounts.throttling import AuthRateThrottle, PlanRateThrottle
from audit import tracking
from d2r.api.views import TenantScopedMixin


class _TokenEndpoint(TenantScopedMixin, APIView):
    """Login, refresh and logout: no session (so no CSRF on an API login); the header
    authenticator only makes refusals 401 rather than 403; strict per-IP rate limit."""

    authentication_classes = [CredentialAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]


def _pair_response(pair: services.TokenPair) -> Response:
    return Response(s.TokenPairSerializer(
        {"access": pair.access, "refresh": pair.refresh, "expires_in": pair.expires_in}).data)


def _refuse(exc: CredentialError) -> Exception:
    if exc.slug == "permission-denied":
        return PermissionDenied(exc.detail)
    return AuthenticationFailed(exc.detail)


def _check_mfa(user: Any, code: str | None) -> None:
    """Users with an authenticator must send its code; the policy may demand one."""
    from accounts.mfa import totp_verify, user_has_totp, user_needs_mfa_setup

    if user_has_totp(user):
        if not code or not totp_verify(user, code):
            with transaction.atomic():
                events.auth_event("mfa.failure", actor=str(user), subject_id=user.pk)
            raise AuthenticationFailed("A valid authenticator code (`otp`) is required.")
    elif user_needs_mfa_setup(user):
        raise PermissionDenied(
            "This workspace requires MFA: set up an authenticator in the browser first."
        )


class TokenApi(_TokenEndpoint):
    """Exchange a workspace user's credentials for an access token and a refresh token."""


    @extend_schema(
        request=s.TokenRequestSerializer,
        responses=s.TokenPairSerializer,
        summary="Log in (token pair)",
    )
    def post(self, request: Request) -> Response:
        data = s.TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None:
            with transaction.atomic():
                events.auth_event("login.failure", actor=data.validated_data["username"])
            raise AuthenticationFailed("The username or password is not correct.")
        if password_login_refused(user, path=request.path):  # SSO required (accounts.sso)
            raise PermissionDenied("This workspace requires single sign-on.")
        _check_mfa(user, data.validated_data.get("otp"))
        try:
            pair = services.token_pair_issue(user=user)
        except CredentialError as exc:
            raise _refuse(exc) from exc
        return _pair_response(pair)


class TokenRefreshApi(_TokenEndpoint):
    """Rotate a refresh token for a new pair; a reused token revokes its session."""


    @extend_schema(
        request=s.RefreshRequestSerializer,
        responses=s.TokenPairSerializer,
        summary="Refresh the token pair",
    )
    def post(self, request: Request) -> Response:
        data = s.RefreshRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            pair = services.token_refresh(raw=data.validated_data["refresh"])
        except CredentialError as exc:
            raise _refuse(exc) from exc
        return _pair_response(pair)


class TokenRevokeApi(_TokenEndpoint):
    """Log out: revoke a refresh token and every token rotated from the same login."""


    @extend_schema(
        request=s.RefreshRequestSerializer,
        responses={204: None},
        summary="Log out (revoke a refresh token)",
    )
    def post(self, request: Request) -> Response:
        data = s.RefreshRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.token_revoke(raw=data.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class RevokeAllSessionsApi(TenantScopedMixin, APIView):
    """Log the calling user out everywhere."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: dict}, summary="Revoke all my sessions")
    def post(self, request: Request) -> Response:
        if not request.user.pk:
            raise PermissionDenied("Only people have sessions.")
        count = services.token_revoke_all(user=request.user)
        return Response({"revoked": count})


class JwksApi(APIView):
    """The public keys that verify access tokens (current and not yet retired)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: dict}, summary="JSON Web Key Set")
    def get(self, request: Request) -> Response:
        response = Response(jwt_keys.jwks())
        response["Cache-Control"] = "public, max-age=300"
        return response


class MeApi(TenantScopedMixin, APIView):
    """Who the caller is in this workspace."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=s.MeSerializer, summary="The caller")
    def get(self, request: Request) -> Response:
        principal = request.auth
        role = getattr(principal, "role", None) or user_role(request.user)
        kind = getattr(principal, "kind", "session")
        return Response(
            s.MeSerializer(
                {
                    "name": str(request.user),
                    "kind": kind,
                    "role": role,
                    "workspace": connection.schema_name,
                }
            ).data
        )


def _caller_capabilities(request: Request) -> frozenset[Capability]:
    return frozenset(c for c in Capability if request_allows(request, c))


class ApiKeyViewSet(
    TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):  # type: ignore[type-arg]
    """The workspace's API keys: list, create (shown once), revoke."""

    permission_classes = [needs(Capability.MANAGE_WORKSPACE)]
    serializer_class = s.ApiKeySerializer
    queryset = ApiKey.objects.none()
    throttle_classes = [PlanRateThrottle]

    def get_queryset(self) -> QuerySet[ApiKey]:
        return ApiKey.objects.all()

    @extend_schema(
        request=s.ApiKeyCreateSerializer,
        responses={201: s.ApiKeyCreatedSerializer},
        summary="Create an API key (the key is shown once)",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = s.ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        role = Role(data.validated_data["role"])
        if not ROLE_CAPABILITIES[role] <= _caller_capabilities(request):
            raise PermissionDenied("You cannot create a key with more rights than your own.")
        with transaction.atomic(), tracking.recorded_by_caller(ApiKey) as changes:
            issued = api_key_issue(
                schema=connection.schema_name,
                name=data.validated_data["name"],
                role=role,
                scopes=data.validated_data["scopes"],
                expires_at=data.validated_data.get("expires_at"),
                created_by_id=request.user.pk,
            )
            events.auth_event(
                "api_key.create",
                actor=str(request.user),
                subject_id=issued.api_key_id,
                role=role.value,
                rows=tracking.rows(changes),
            )
        row = ApiKey.objects.get(pk=issued.api_key_id)
        body = s.ApiKeySerializer(row).data | {"key": issued.key}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.ApiKeySerializer, summary="Revoke an API key")
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        key = self.get_object()
        services.api_key_revoke(api_key_id=key.pk, actor=str(request.user))
        key.refresh_from_db()
        return Response(s.ApiKeySerializer(key).data)
