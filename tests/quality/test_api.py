"""CAD revisions, contracts, runs and reviews through the API and the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_tenants.utils import schema_context

from audit.models import Entry
from inspections.models import Asset, Site
from quality.models import QcResult, QcReview
from tests.conftest import TenantUser, make_user
from tests.quality.helpers import CAD, CONTRACT, PART

pytestmark = pytest.mark.django_db


def asset(schema: str = "alpha") -> Asset:
    with schema_context(schema):
        site = Site.objects.create(name=f"Plant {timezone.now().timestamp()}")
        return Asset.objects.create(site=site, tag="FT-1", name="Feature part")


def upload(user: TenantUser, asset_id: int, name: str, data: bytes, units: str = "in") -> Any:
    return user.client.post("/api/v1/cad-revisions", {
        "asset": asset_id, "units": units, "label": "R3", "author": "design",
        "change_note": "first", "file": SimpleUploadedFile(name, data)})


@pytest.fixture
def qc_manager(db: None) -> TenantUser:
    return make_user("alpha", role="qc_manager", name="qc")


@pytest.fixture
def operator(db: None) -> TenantUser:
    return make_user("alpha", role="operator", name="op")


def test_a_cad_revision_is_validated_converted_to_metres_and_numbered(
    qc_manager: TenantUser,
) -> None:
    part = asset()
    first = upload(qc_manager, part.pk, "featuretype.STL", PART.read_bytes())
    assert first.status_code == 201, first.content
    body = first.json()
    assert (body["number"], body["units"], body["triangle_count"]) == (1, "in", 3476)
    assert body["bbox_max"][0] - body["bbox_min"][0] == pytest.approx(5 * 0.0254, rel=1e-6)
    assert body["watertight"] is False and any("boundary" in w for w in body["warnings"])
    assert body["region_count"] > 10
    again = upload(qc_manager, part.pk, "copy.stl", PART.read_bytes())
    assert (again.status_code, again.json()["id"]) == (200, body["id"])  # same bytes
    listed = qc_manager.client.get(f"/api/v1/cad-revisions?asset={part.pk}").json()
    assert [r["number"] for r in listed["results"]] == [1]
    wrong_units = upload(qc_manager, part.pk, "big.stl",
                         (CAD / "busted.STL").read_bytes(), units="m")
    assert wrong_units.status_code == 201
    assert wrong_units.json()["number"] == 2
    with schema_context("alpha"):
        assert Entry.objects.filter(action="twins.cad_revision.created").count() == 2


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("empty.stl", (CAD / "empty.stl").read_bytes(), "no triangles"),
    ("broken.stl", (CAD / "busted.STL").read_bytes()[:5000], "truncated"),
    ("flat.stl", b"solid x\nfacet normal 0 0 0\nouter loop\nvertex 0 0 0\nvertex 1 1 1\n"
                 b"vertex 2 2 2\nendloop\nendfacet\nendsolid x\n", "degenerate"),
    ("part.step", b"ISO-10303-21;", "STEP file could not be read"),
    ("part.dwg", b"AC1032", "unsupported format"),
])
def test_bad_meshes_are_refused_with_a_reason(qc_manager: TenantUser, name: str, data: bytes,
                                              reason: str) -> None:
    response = upload(qc_manager, asset().pk, name, data, units="mm")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert reason in response.json()["detail"]


def test_step_is_tessellated_in_its_own_units(qc_manager: TenantUser) -> None:
    """A STEP file carries its length unit: the part arrives in metres whatever is declared."""
    response = upload(qc_manager, asset().pk, "featuretype.STEP",
                      (CAD / "featuretype.STEP").read_bytes(), units="mm")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["triangle_count"] > 1000
    from twins.models import CadRevision

    with schema_context("alpha"):
        revision = CadRevision.objects.get(pk=body["id"])
        extent = [hi - lo for lo, hi in zip(revision.bbox_min, revision.bbox_max, strict=True)]
    # 5 x 2.5 x 1.375 inches, as in the STL of the same part
    assert extent == pytest.approx([0.127, 0.0635, 0.034925], abs=1e-6)


def test_contracts_are_versioned_and_validated(qc_manager: TenantUser,
                                               operator: TenantUser) -> None:
    part = asset()
    url = "/api/v1/tolerance-contracts"
    first = qc_manager.client.post(url, {"asset": part.pk, "spec": CONTRACT},
                                   content_type="application/json")
    second = qc_manager.client.post(url, {"asset": part.pk, "spec": CONTRACT,
                                          "note": "tighter"}, content_type="application/json")
    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    bad = qc_manager.client.post(url, {"asset": part.pk, "spec": {"gates": {"max_rmse": 1}}},
                                 content_type="application/json")
    assert bad.status_code == 400 and "max_rmse" in bad.json()["detail"]
    refused = operator.client.post(url, {"asset": part.pk, "spec": CONTRACT},
                                   content_type="application/json")
    assert refused.status_code == 403
    assert operator.client.get(f"{url}?asset={part.pk}").json()["results"][0]["version"] == 2
    assert qc_manager.client.patch(f"{url}/{first.json()['id']}", {"note": "x"},
                                   content_type="application/json").status_code == 405


def a_result(schema: str = "alpha", decision: str = "fail") -> QcResult:
    from tests.isolation.registry import _qc_run

    with schema_context(schema):
        run = _qc_run()
        return QcResult.objects.create(run=run, decision=decision, uncertainty_mm=0.1,
                                       algorithm_version="1.0.0",
                                       regions=[{"region": 0, "decision": decision}])


@pytest.mark.parametrize(("role", "status"), [
    ("owner", 201), ("admin", 201), ("qc_manager", 201), ("operator", 403),
    ("auditor", 403), ("finance", 403), ("viewer", 403),
])
def test_role_matrix_of_the_review_endpoint(role: str, status: int) -> None:
    user = make_user("alpha", role=role, name=f"r-{role}")
    result = a_result()
    response = user.client.post(f"/api/v1/qc-runs/{result.run_id}/review",
                                {"action": "accept", "reason": "looked at it"},
                                content_type="application/json")
    assert response.status_code == status


@pytest.mark.parametrize(("role", "read", "request_run"), [
    ("qc_manager", 200, True), ("operator", 200, True), ("viewer", 200, False),
    ("auditor", 200, False), ("finance", 403, False),
])
def test_role_matrix_of_runs_and_cad(role: str, read: int, request_run: bool) -> None:
    user = make_user("alpha", role=role, name=f"r-{role}")
    assert user.client.get("/api/v1/qc-runs").status_code == read
    assert user.client.get("/api/v1/cad-revisions").status_code == read
    assert user.client.get("/api/v1/tolerance-contracts").status_code == read
    response = user.client.post("/api/v1/qc-runs", {"scan": "00000000-0000-0000-0000-"
                                                    "000000000000", "contract": "00000000-"
                                                    "0000-0000-0000-000000000000"},
                                content_type="application/json")
    assert (response.status_code == 404) is request_run  # allowed: then no such scan
    assert upload(user, 1, "x.stl", b"x").status_code in ((400,) if role == "qc_manager"
                                                           else (403,))


def test_an_override_needs_a_reason_and_never_changes_the_machine_verdict(
    qc_manager: TenantUser,
) -> None:
    result = a_result(decision="fail")
    url = f"/api/v1/qc-runs/{result.run_id}/review"
    no_reason = qc_manager.client.post(url, {"action": "override", "decision": "pass",
                                             "reason": " "}, content_type="application/json")
    assert no_reason.status_code == 400
    no_decision = qc_manager.client.post(url, {"action": "override", "reason": "gauge ok"},
                                         content_type="application/json")
    assert no_decision.status_code == 400
    done = qc_manager.client.post(url, {"action": "override", "decision": "pass",
                                        "reason": "hand gauge shows 0.2 mm"},
                                  content_type="application/json")
    assert done.status_code == 201, done.content
    assert (done.json()["machine_decision"], done.json()["decision"]) == ("fail", "pass")
    run = qc_manager.client.get(f"/api/v1/qc-runs/{result.run_id}").json()
    assert run["result"]["decision"] == "fail"
    assert run["result"]["effective_decision"] == "pass"
    assert run["result"]["reviews"][0]["reason"] == "hand gauge shows 0.2 mm"
    with schema_context("alpha"):
        result.refresh_from_db()
        assert result.decision == "fail"
        entry = Entry.objects.get(seq=done.json()["audit_seq"])
        assert entry.action == "qc.review.override" and '"machine_decision":"fail"' in entry.payload
        assert QcReview.objects.filter(result=result).count() == 1


def test_another_workspaces_run_is_not_found(qc_manager: TenantUser) -> None:
    theirs = a_result("beta")
    assert qc_manager.client.get(f"/api/v1/qc-runs/{theirs.run_id}").status_code == 404
    review = qc_manager.client.post(f"/api/v1/qc-runs/{theirs.run_id}/review",
                                    {"action": "accept", "reason": "x"},
                                    content_type="application/json")
    assert review.status_code == 404
    with schema_context("beta"):
        assert not QcReview.objects.exists()


def test_the_admin_review_desk(qc_manager: TenantUser, operator: TenantUser) -> None:
    result = a_result()
    listing = qc_manager.client.get("/admin/quality/qcresult/?decision__exact=fail")
    assert listing.status_code == 200 and str(result.run.scan.asset) in listing.content.decode()
    page = qc_manager.client.get(f"/admin/quality/qcresult/{result.pk}/change/")
    assert page.status_code == 200
    assert b"Record review" in page.content and b"deviation heatmap" in page.content
    url = f"/admin/quality/qcresult/{result.pk}/review/"
    qc_manager.client.post(url, {"action": "override", "decision": "pass", "reason": ""})
    with schema_context("alpha"):
        assert not QcReview.objects.exists()  # the reason is mandatory
    qc_manager.client.post(url, {"action": "accept", "reason": "agree"})
    with schema_context("alpha"):
        assert QcReview.objects.get().decision == "fail"
    assert operator.client.post(url, {"action": "accept", "reason": "x"}).status_code == 403
    assert b"Record review" not in operator.client.get(
        f"/admin/quality/qcresult/{result.pk}/change/").content


def test_a_run_requested_through_the_api_is_judged_by_the_task(
    qc_manager: TenantUser, monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    import numpy as np

    from quality import tasks
    from tests.quality.helpers import make_processed_scan, part_mesh, sample_scan

    sent: list[str] = []
    monkeypatch.setattr(tasks.qc_run_execute_task, "apply_async",
                        lambda args, queue: sent.append(args[0]))
    part = asset()
    assert upload(qc_manager, part.pk, "featuretype.STL", PART.read_bytes()).status_code == 201
    contract = qc_manager.client.post("/api/v1/tolerance-contracts",
                                      {"asset": part.pk, "spec": CONTRACT},
                                      content_type="application/json").json()
    mesh, regions = part_mesh()
    with schema_context("alpha"):
        scan = make_processed_scan(part, sample_scan(mesh, regions, n=20_000),
                                   edge_transform=np.eye(4))
    with django_capture_on_commit_callbacks(execute=True):
        created = qc_manager.client.post("/api/v1/qc-runs", {"scan": str(scan.pk),
                                                             "contract": contract["id"]},
                                         content_type="application/json")
    assert created.status_code == 202, created.content
    assert sent == [created.json()["id"]]
    with schema_context("alpha"), django_capture_on_commit_callbacks(execute=True):
        assert tasks.qc_run_execute_task(sent[0]) == "done"
    run = qc_manager.client.get(f"/api/v1/qc-runs/{sent[0]}").json()
    assert (run["status"], run["progress"], run["result"]["decision"]) == ("done", 100, "pass")
    heatmap = qc_manager.client.get(
        f"/admin/quality/qcresult/{run['result']['id']}/artifact/heatmap/")
    assert heatmap.status_code == 200 and heatmap.content[:4] == b"\x89PNG"
