"""Choose the workspace of each request: by host for browsers, by credential for APIs."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_public_schema_name

from d2r.api.problems import problem_response
from tenants.credentials import CredentialError
from tenants.models import Tenant

SESSION_TENANT_KEY = "_d2r_tenant"
CredentialResolver = Callable[[HttpRequest], "Tenant | None"]


def credential_resolvers() -> list[CredentialResolver]:
    """The configured resolvers that map an API credential to its workspace.

    Each takes the request and returns the credential's tenant, or None when the
    request carries no credential it understands; a credential that is present but
    not acceptable raises CredentialError (answered 401/403 problem+json). The identity
    app adds its resolvers (API keys, device tokens) through the
    TENANT_CREDENTIAL_RESOLVERS setting.
    """
    return [import_string(path) for path in getattr(settings, "TENANT_CREDENTIAL_RESOLVERS", [])]


class TenantMiddleware(TenantMainMiddleware):
    """django-tenants' host routing, plus credential routing and workspace status.

    A request whose credential belongs to workspace A is served in A's schema; if it
    arrives on B's host it is refused, never served from either schema.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        connection.set_schema_to_public()
        hostname = self.hostname_from_request(request)
        host_tenant = Tenant.objects.filter(domains__domain=hostname).select_related("plan").first()
        credential_tenant = None
        try:
            for resolver in credential_resolvers():
                credential_tenant = resolver(request)
                if credential_tenant is not None:
                    break
        except CredentialError as exc:
            status = 403 if exc.slug in {"permission-denied", "device-refused"} else 401
            return problem_response(request, exc.slug, detail=exc.detail, status=status)
        tenant = host_tenant or credential_tenant
        if tenant is not None and tenant.plan_id and not Tenant.plan.is_cached(tenant):
            # Loaded here, as the platform role: tenant roles cannot read public tables.
            tenant = Tenant.objects.select_related("plan").get(pk=tenant.pk)
        if (
            credential_tenant is not None
            and host_tenant is not None
            and (credential_tenant.pk != host_tenant.pk and not host_tenant.is_public)
        ):
            return problem_response(request, "credential-tenant-mismatch")
        if tenant is None:
            if hostname in settings.PLATFORM_HOSTS:
                self.setup_url_routing(request, force_public=True)
                return None
            return problem_response(
                request, "tenant-not-found", detail=f"No workspace is served at {hostname!r}."
            )
        if not tenant.is_public and tenant.status != Tenant.Status.ACTIVE:
            kind = (
                "tenant-suspended"
                if tenant.status == Tenant.Status.SUSPENDED
                else "tenant-unavailable"
            )
            return problem_response(request, kind)
        tenant.domain_url = hostname
        request.tenant = tenant  # type: ignore[attr-defined]
        connection.set_tenant(tenant)
        self.setup_url_routing(request)
        return None


class SessionTenantBindingMiddleware:
    """Bind a browser session to the workspace it logged in to.

    Sessions already live in each workspace's own schema; this also refuses a session
    presented on another workspace's host (e.g. a cookie scoped too widely).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        schema = connection.schema_name or get_public_schema_name()
        if request.user.is_authenticated:
            bound = request.session.get(SESSION_TENANT_KEY)
            if bound is None:
                request.session[SESSION_TENANT_KEY] = schema
            elif bound != schema:
                logout(request)
        return self.get_response(request)
