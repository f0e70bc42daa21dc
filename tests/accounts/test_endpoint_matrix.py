"""Every API endpoint by every role: allowed roles pass the permission check, the others
get 403. A new endpoint that is not in this table fails `test_matrix_covers_every_endpoint`.

Detail routes use ids that do not exist: permissions are checked before the object is
looked up, so an allowed role gets 404 (or 400 for a bad body), never 403.
"""

from __future__ import annotations

import re

import pytest
from django.urls import get_resolver
from django.urls.resolvers import URLPattern, URLResolver

from tests.conftest import make_user

pytestmark = pytest.mark.django_db

ALL = {"owner", "admin", "qc_manager", "operator", "auditor", "finance", "viewer"}
MANAGERS = {"owner", "admin"}
READERS = ALL - {"finance"}
AUDIT_READERS = {"owner", "admin", "qc_manager", "auditor"}
AUDIT_EXPORTERS = {"owner", "admin", "auditor"}
INGESTERS = {"owner", "admin", "qc_manager", "operator"}
ASSET_WRITERS = {"owner", "admin", "qc_manager"}
UUID0 = "00000000-0000-0000-0000-000000000000"

# Public by design (no role needed): health, docs, key sets, login endpoints.
PUBLIC = {
    "api/v1/health", "api/v1/ready", "api/v1/auth/jwks", "api/v1/schema/", "api/v1/docs/",
    "api/v1/redoc/", "api/v1/auth/token", "api/v1/auth/token/refresh",
    "api/v1/auth/token/revoke", "api/v1/devices/ca", "api/v1/devices/ca/crl",
    "api/v1/uploads/acknowledgement-key",
}

# (method, concrete path, route it exercises, allowed roles)
MATRIX: list[tuple[str, str, str, set[str]]] = [
    ("GET", "/api/v1/me", "api/v1/me", ALL),
    ("GET", "/api/v1/usage", "api/v1/usage", {"owner", "admin", "finance"}),
    ("POST", "/api/v1/auth/sessions/revoke-all", "api/v1/auth/sessions/revoke-all", ALL),
    ("GET", "/api/v1/api-keys", "api/v1/^api-keys$", MANAGERS),
    ("POST", "/api/v1/api-keys", "api/v1/^api-keys$", MANAGERS),
    ("GET", "/api/v1/api-keys/999999", "api/v1/^api-keys/(?P<pk>[^/.]+)$", MANAGERS),
    ("POST", "/api/v1/api-keys/999999/revoke", "api/v1/^api-keys/(?P<pk>[^/.]+)/revoke$",
     MANAGERS),
    ("GET", "/api/v1/devices", "api/v1/^devices$", MANAGERS),
    ("POST", "/api/v1/devices", "api/v1/^devices$", MANAGERS),
    ("GET", "/api/v1/devices/999999", "api/v1/^devices/(?P<pk>[^/.]+)$", MANAGERS),
    ("POST", "/api/v1/devices/999999/activate", "api/v1/^devices/(?P<pk>[^/.]+)/activate$",
     MANAGERS),
    ("POST", "/api/v1/devices/999999/suspend", "api/v1/^devices/(?P<pk>[^/.]+)/suspend$",
     MANAGERS),
    ("POST", "/api/v1/devices/999999/decommission",
     "api/v1/^devices/(?P<pk>[^/.]+)/decommission$", MANAGERS),
    ("POST", "/api/v1/devices/999999/api-keys", "api/v1/^devices/(?P<pk>[^/.]+)/api-keys$",
     MANAGERS),
    ("POST", "/api/v1/devices/999999/certificates",
     "api/v1/^devices/(?P<pk>[^/.]+)/certificates$", MANAGERS),
    ("POST", "/api/v1/devices/999999/certificates/1/revoke",
     "api/v1/^devices/(?P<pk>[^/.]+)/certificates/(?P<certificate_id>[0-9]+)/revoke$",
     MANAGERS),
    ("GET", "/api/v1/sites", "api/v1/^sites$", READERS),
    ("POST", "/api/v1/sites", "api/v1/^sites$", ASSET_WRITERS),
    ("GET", "/api/v1/sites/999999", "api/v1/^sites/(?P<pk>[^/.]+)$", READERS),
    ("PATCH", "/api/v1/sites/999999", "api/v1/^sites/(?P<pk>[^/.]+)$", ASSET_WRITERS),
    ("DELETE", "/api/v1/sites/999999", "api/v1/^sites/(?P<pk>[^/.]+)$", ASSET_WRITERS),
    ("GET", "/api/v1/assets", "api/v1/^assets$", READERS),
    ("POST", "/api/v1/assets", "api/v1/^assets$", ASSET_WRITERS),
    ("GET", "/api/v1/assets/999999", "api/v1/^assets/(?P<pk>[^/.]+)$", READERS),
    ("PATCH", "/api/v1/assets/999999", "api/v1/^assets/(?P<pk>[^/.]+)$", ASSET_WRITERS),
    ("DELETE", "/api/v1/assets/999999", "api/v1/^assets/(?P<pk>[^/.]+)$", ASSET_WRITERS),
    ("GET", "/api/v1/scans", "api/v1/^scans$", READERS),
    ("GET", f"/api/v1/scans/{UUID0}", "api/v1/^scans/(?P<pk>[^/.]+)$", READERS),
    ("POST", "/api/v1/uploads", "api/v1/uploads", INGESTERS),
    ("POST", "/api/v1/uploads/", "api/v1/uploads/", INGESTERS),
    ("HEAD", f"/api/v1/uploads/{UUID0}", "api/v1/uploads/<uuid:upload_id>", READERS),
    ("PATCH", f"/api/v1/uploads/{UUID0}", "api/v1/uploads/<uuid:upload_id>", INGESTERS),
    ("DELETE", f"/api/v1/uploads/{UUID0}", "api/v1/uploads/<uuid:upload_id>", INGESTERS),
    ("GET", f"/api/v1/uploads/{UUID0}/acknowledgement",
     "api/v1/uploads/<uuid:upload_id>/acknowledgement", READERS),
    ("GET", "/api/v1/audit/keys", "api/v1/audit/keys", AUDIT_READERS),
    ("GET", "/api/v1/audit/verify", "api/v1/audit/verify", AUDIT_READERS),
    ("GET", "/api/v1/audit/entries", "api/v1/^audit/entries$", AUDIT_READERS),
    ("GET", "/api/v1/audit/entries/999999", "api/v1/^audit/entries/(?P<pk>[0-9]+)$",
     AUDIT_READERS),
    ("GET", "/api/v1/audit/entries/999999/proof",
     "api/v1/^audit/entries/(?P<pk>[0-9]+)/proof$", AUDIT_READERS),
    ("GET", "/api/v1/audit/tree-heads", "api/v1/^audit/tree-heads$", AUDIT_READERS),
    ("POST", "/api/v1/audit/tree-heads", "api/v1/^audit/tree-heads$", AUDIT_EXPORTERS),
    ("GET", "/api/v1/audit/tree-heads/consistency?old_size=1&new_size=1",
     "api/v1/^audit/tree-heads/consistency$", AUDIT_READERS),
    ("GET", "/api/v1/audit/tree-heads/latest", "api/v1/^audit/tree-heads/latest$",
     AUDIT_READERS),
    ("GET", "/api/v1/audit/receipts", "api/v1/^audit/receipts$", AUDIT_READERS),
    ("GET", f"/api/v1/audit/receipts/{UUID0}", "api/v1/^audit/receipts/(?P<pk>[^/.]+)$",
     AUDIT_READERS),
    ("GET", "/api/v1/audit/exports", "api/v1/^audit/exports$", AUDIT_READERS),
    ("POST", "/api/v1/audit/exports", "api/v1/^audit/exports$", AUDIT_EXPORTERS),
    ("GET", "/api/v1/audit/exports/999999", "api/v1/^audit/exports/(?P<pk>[^/.]+)$",
     AUDIT_READERS),
    ("GET", "/api/v1/audit/exports/999999/download",
     "api/v1/^audit/exports/(?P<pk>[^/.]+)/download$", AUDIT_READERS),
    # CAD revisions and QC (issue 5)
    ("GET", "/api/v1/cad-revisions", "api/v1/^cad-revisions$", READERS),
    ("POST", "/api/v1/cad-revisions", "api/v1/^cad-revisions$", ASSET_WRITERS),
    ("GET", f"/api/v1/cad-revisions/{UUID0}", "api/v1/^cad-revisions/(?P<pk>[^/.]+)$",
     READERS),
    ("GET", "/api/v1/tolerance-contracts", "api/v1/^tolerance-contracts$", READERS),
    ("POST", "/api/v1/tolerance-contracts", "api/v1/^tolerance-contracts$", ASSET_WRITERS),
    ("GET", f"/api/v1/tolerance-contracts/{UUID0}",
     "api/v1/^tolerance-contracts/(?P<pk>[^/.]+)$", READERS),
    ("GET", "/api/v1/qc-runs", "api/v1/^qc-runs$", READERS),
    ("POST", "/api/v1/qc-runs", "api/v1/^qc-runs$", INGESTERS),
    ("GET", f"/api/v1/qc-runs/{UUID0}", "api/v1/^qc-runs/(?P<pk>[^/.]+)$", READERS),
    ("POST", f"/api/v1/qc-runs/{UUID0}/review", "api/v1/^qc-runs/(?P<pk>[^/.]+)/review$",
     ASSET_WRITERS),
]


def _routes() -> set[str]:
    def walk(patterns, prefix=""):  # type: ignore[no-untyped-def]
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    return {r for r in walk(get_resolver("d2r.urls_tenant").url_patterns)
            if r.startswith("api/v1/") and not re.search(r"\\.\(\?P<format>", r)}


def test_matrix_covers_every_endpoint() -> None:
    covered = {route for _, _, route, _ in MATRIX} | PUBLIC
    assert sorted(_routes() - covered) == [], "add the new endpoints to MATRIX or PUBLIC"
    assert sorted(covered - _routes()) == [], "MATRIX names routes that no longer exist"


@pytest.mark.parametrize("role", sorted(ALL))
def test_every_endpoint_by_role(role: str) -> None:
    user = make_user("alpha", role=role, name=f"every-{role}")
    wrong = []
    for method, path, _, allowed in MATRIX:
        call = getattr(user.client, method.lower())
        tus = {"HTTP_TUS_RESUMABLE": "1.0.0"} if "/uploads" in path else {}
        response = (call(path, {}, content_type="application/json", **tus)
                    if method in {"POST", "PATCH", "PUT"} else call(path, **tus))
        refused = response.status_code == 403
        if (role in allowed) == refused or response.status_code in (401, 405, 500):
            wrong.append((method, path, response.status_code))
    assert wrong == [], f"{role}: unexpected answers {wrong}"
