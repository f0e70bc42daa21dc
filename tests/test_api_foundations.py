"""API foundations: problem+json everywhere, request ids, health, schema, pagination."""

from __future__ import annotations

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from inspections.models import Site
from tenants import services
from tenants.models import Tenant
from tests.conftest import TenantUser, make_user

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


def _problem(response, status: int, slug: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"https://docs.d2r.cloud/problems/{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]


def test_unknown_api_path_is_problem_404(alpha_admin: TenantUser) -> None:
    body = _problem(alpha_admin.client.get("/api/v1/no-such-thing"), 404, "not-found")
    assert body["instance"] == "/api/v1/no-such-thing"


def test_unauthenticated_is_problem_401() -> None:
    _problem(Client(HTTP_HOST="alpha.localhost").get("/api/v1/sites"), 401, "not-authenticated")


def test_validation_error_names_the_field(alpha_admin: TenantUser) -> None:
    body = _problem(alpha_admin.client.post("/api/v1/assets", {"tag": "X"},
                                            content_type="application/json"),
                    400, "validation-error")
    assert set(body["errors"]) == {"site", "name"}
    assert body["detail"].startswith(("site:", "name:"))


def test_malformed_json_is_problem_400(alpha_admin: TenantUser) -> None:
    _problem(alpha_admin.client.post("/api/v1/sites", "{not json",
                                     content_type="application/json"), 400, "parse-error")


def test_method_not_allowed_is_problem_405(alpha_admin: TenantUser) -> None:
    _problem(alpha_admin.client.put("/api/v1/sites", {}, content_type="application/json"),
             405, "method-not-allowed")


def test_permission_denied_is_problem_403() -> None:
    viewer = make_user("alpha", role="viewer", name="viewer")
    assert viewer.client.get("/api/v1/sites").status_code == 200
    _problem(viewer.client.post("/api/v1/sites", {"name": "N"}, content_type="application/json"),
             403, "permission-denied")


def test_unknown_workspace_host_is_problem_404() -> None:
    body = _problem(Client(HTTP_HOST="nobody.localhost").get("/api/v1/sites"), 404,
                    "tenant-not-found")
    assert "nobody.localhost" in body["detail"]


def test_suspended_workspace_is_refused(alpha_admin: TenantUser) -> None:
    alpha = Tenant.objects.get(schema_name="alpha")
    services.tenant_set_status(tenant_id=alpha.pk, status=Tenant.Status.SUSPENDED)
    _problem(alpha_admin.client.get("/api/v1/sites"), 403, "tenant-suspended")
    services.tenant_set_status(tenant_id=alpha.pk, status=Tenant.Status.ACTIVE)
    assert alpha_admin.client.get("/api/v1/sites").status_code == 200


def test_request_id_is_echoed_or_generated(alpha_admin: TenantUser) -> None:
    given = alpha_admin.client.get("/api/v1/health", HTTP_X_REQUEST_ID="edge-42.abc")
    assert given["X-Request-ID"] == "edge-42.abc"
    generated = alpha_admin.client.get("/api/v1/health", HTTP_X_REQUEST_ID="bad id\n")
    assert len(generated["X-Request-ID"]) == 32
    missing = alpha_admin.client.get("/api/v1/no-such-thing", HTTP_X_REQUEST_ID="trace-1")
    assert missing.json()["request_id"] == "trace-1"


@pytest.mark.parametrize("host", ["localhost", "alpha.localhost"])
def test_health_and_ready_report_every_component(host: str) -> None:
    client = Client(HTTP_HOST=host)
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    ready = client.get("/api/v1/ready")
    assert ready.status_code == 200, ready.content
    body = ready.json()
    assert body["status"] == "ready"
    assert set(body["components"]) == {"database", "redis", "object_storage"}
    assert all(c["status"] == "up" for c in body["components"].values())


def test_openapi_schema_and_docs_are_served() -> None:
    client = Client(HTTP_HOST="alpha.localhost")
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/sites" in document["paths"]
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_metrics_are_exposed() -> None:
    response = Client(HTTP_HOST="localhost").get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests" in response.content


def test_lists_use_cursor_pagination(alpha_admin: TenantUser) -> None:
    with schema_context("alpha"):
        for index in range(5):
            Site.objects.create(name=f"Plant {index}")
    first = alpha_admin.client.get("/api/v1/sites?page_size=2").json()
    assert len(first["results"]) == 2 and "cursor=" in first["next"]
    second = alpha_admin.client.get(first["next"]).json()
    assert {s["id"] for s in first["results"]}.isdisjoint({s["id"] for s in second["results"]})


def test_mass_assignment_of_id_is_ignored(alpha_admin: TenantUser) -> None:
    created = alpha_admin.client.post("/api/v1/sites", {"id": 999999, "name": "Plant X"},
                                      content_type="application/json")
    assert created.status_code == 201
    assert created.json()["id"] != 999999


def resolve_test_credential(request):  # type: ignore[no-untyped-def]
    """A credential resolver for the seam: `X-Test-Workspace: <slug>` names the workspace."""
    slug = request.headers.get("X-Test-Workspace")
    return Tenant.objects.filter(schema_name=slug).first() if slug else None


def test_credential_resolves_the_workspace_and_is_refused_on_another_host(
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.TENANT_CREDENTIAL_RESOLVERS = [f"{__name__}.resolve_test_credential"]
    with schema_context("beta"):
        Site.objects.create(name="Beta plant")
    beta_user = make_user("beta", superuser=True, name="api")
    # No workspace host: the credential alone selects beta's schema.
    beta_user.client.defaults["HTTP_HOST"] = "api.localhost"
    listing = beta_user.client.get("/api/v1/sites", HTTP_X_TEST_WORKSPACE="beta")
    assert listing.status_code == 200
    assert [s["name"] for s in listing.json()["results"]] == ["Beta plant"]
    # beta's credential on alpha's host: refused, served from neither schema.
    _problem(Client(HTTP_HOST="alpha.localhost").get("/api/v1/sites",
                                                     HTTP_X_TEST_WORKSPACE="beta"),
             403, "credential-tenant-mismatch")


def test_security_headers_on_pages_and_api() -> None:
    page = Client(HTTP_HOST="alpha.localhost").get("/admin/login/")
    csp = page["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"  # no inline scripts, no eval
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"
    api = Client(HTTP_HOST="alpha.localhost").get(
        "/api/v1/health", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in api  # CORS only where configured


def test_a_resource_view_without_a_declared_capability_refuses_everyone(
    alpha_admin: TenantUser,
) -> None:
    """Fail closed: forgetting `permission_classes` on a new resource opens nothing."""
    from django.test import RequestFactory

    from d2r.api.views import TenantModelViewSet
    from inspections.api.v1.serializers import SiteSerializer

    class Forgotten(TenantModelViewSet):
        serializer_class = SiteSerializer
        queryset = Site.objects.none()

    request = RequestFactory().get("/api/v1/forgotten", HTTP_HOST="alpha.localhost")
    request.tenant = Tenant.objects.get(schema_name="alpha")  # type: ignore[attr-defined]
    request.user = alpha_admin.user  # type: ignore[attr-defined]
    from django.db import connection

    connection.set_tenant(request.tenant)  # type: ignore[attr-defined]
    response = Forgotten.as_view({"get": "list"})(request)
    assert response.status_code == 403  # even the workspace owner
