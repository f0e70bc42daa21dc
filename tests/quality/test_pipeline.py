"""The QC pipeline end to end on a real CAD part with known truth.

Given a scan sampled from the part's surface (noise, quantisation to 0.1 mm by the
canonical writer, a rigid misalignment the edge transform nearly undoes), when the
task body runs, then the verdict, the region and the gates are the ones we injected.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from inspections import objectstore
from inspections.models import Asset, Site
from quality import services, tasks
from quality.models import QcResult, QcRun
from tests.quality.helpers import (
    CONTRACT,
    PART,
    largest_regions,
    make_processed_scan,
    part_mesh,
    rigid,
    sample_scan,
)

pytestmark = pytest.mark.django_db

MISALIGN = rigid([1, 2, 3], 3.0, [0.02, -0.01, 0.015])  # scan frame = MISALIGN @ mesh frame
EDGE_ERROR = rigid([0, 1, 1], 0.3, [0.001, 0.0005, -0.001])  # the device is nearly right


@pytest.fixture(scope="module")
def part() -> tuple[Any, np.ndarray]:
    return part_mesh()


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(services, "publish", lambda schema, topic, event: sent.append(
        {"schema": schema, "topic": topic, **event}))
    return sent


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(tasks.qc_run_execute_task, "apply_async",
                        lambda args, queue: calls.append(args[0]))
    return calls


def setup_asset() -> tuple[Asset, Any, Any]:
    from twins.services import cad_revision_create

    site = Site.objects.create(name=f"Plant {timezone.now().timestamp()}")
    asset = Asset.objects.create(site=site, tag="FT-1", name="Feature part", kind="part")
    revision, created = cad_revision_create(asset_id=asset.pk, data=PART.read_bytes(),
                                            filename="featuretype.STL", units="in", label="R3",
                                            author="design", change_note="first release")
    assert created
    contract = services.contract_create(asset_id=asset.pk, spec=CONTRACT)
    return asset, revision, contract


def judge(points_mesh_frame: np.ndarray, *, edge: np.ndarray | None, capture: Any,
          **scan_fields: Any) -> tuple[QcRun, QcResult]:
    asset, revision, contract = setup_asset()
    homogeneous = np.c_[points_mesh_frame, np.ones(len(points_mesh_frame))]
    scan_points = (homogeneous @ MISALIGN.T)[:, :3]
    scan = make_processed_scan(asset, scan_points, edge_transform=edge, **scan_fields)
    with capture(execute=True):
        run = services.qc_run_request(scan_id=scan.pk, contract_id=contract.pk)
    assert run.cad_revision_id == revision.pk  # chosen by the scan's reported label? latest
    with capture(execute=True):
        assert tasks.qc_run_execute_task(str(run.pk)) == "done"
    run.refresh_from_db()
    return run, QcResult.objects.get(run=run)


def region_row(result: QcResult, region: int) -> dict[str, Any]:
    return next(r for r in result.regions if r["region"] == region)


def test_a_clean_scan_passes_and_the_transform_is_recovered(
    part: Any, events: list[dict[str, Any]], enqueued: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    mesh, regions = part
    points = sample_scan(mesh, regions, n=40_000)
    with schema_context("alpha"):
        run, result = judge(points, edge=EDGE_ERROR @ np.linalg.inv(MISALIGN),
                            capture=django_capture_on_commit_callbacks)
        assert enqueued == [str(run.pk)]
        assert (run.status, run.progress, result.decision) == ("done", 100, "pass")
        recovered = np.array(result.alignment["transform"])
        truth = np.linalg.inv(MISALIGN)
        rot_err = np.degrees(np.arccos(np.clip(
            (np.trace(recovered[:3, :3].T @ truth[:3, :3]) - 1) / 2, -1, 1)))
        assert rot_err < 0.01  # degrees
        assert np.abs(recovered[:3, 3] - truth[:3, 3]).max() < 2e-5  # 20 um
        assert result.alignment["fitness"] > 0.99
        assert all(g["passed"] for g in result.gates)
        assert 0.05 < result.uncertainty_mm < 0.2
        assert result.reasons[0]["code"] == "all-regions-conform"
        assert result.summary["point_count"] == 40_000
        assert result.receipt_id is not None and result.operator == "kim"
        # artifacts exist and are what they say
        png = objectstore.get(result.heatmap_key)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert objectstore.get(result.histogram_key)[:4] == b"\x89PNG"
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(objectstore.get(result.deviation_map_key)))
        assert table.num_rows == 40_000
        assert set(table.column_names) >= {"x", "y", "z", "d", "region", "triangle"}
        assert np.abs(table.column("d").to_numpy()).max() < 0.25e-3
    progress = [e["data"]["progress"] for e in events if e["kind"] == "qc.run"]
    assert progress == sorted(progress) and progress[-1] == 100
    assert {e["schema"] for e in events} == {"alpha"}
    assert events[-1]["data"]["decision"] == "pass"


def test_a_dent_fails_in_the_region_it_was_made_and_with_its_depth(
    part: Any, enqueued: list[str], django_capture_on_commit_callbacks: Any,
) -> None:
    mesh, regions = part
    target = largest_regions(mesh, regions)[0]
    points = sample_scan(mesh, regions, n=40_000, dent=(target, 2.5, 10.0))
    with schema_context("alpha"):
        _, result = judge(points, edge=EDGE_ERROR @ np.linalg.inv(MISALIGN),
                          capture=django_capture_on_commit_callbacks)
    assert result.decision == "fail"
    failing = {r["region"] for r in result.reasons if r["code"].startswith("fail:")}
    assert failing == {target}
    row = region_row(result, target)
    assert row["decision"] == "fail"
    assert row["min_mm"] == pytest.approx(-2.5, abs=0.15)  # depth within noise
    assert row["fraction_fail"] > 0.001
    others = [r for r in result.regions if r["region"] != target and r["decision"] != "not-judged"]
    assert others and all(r["decision"] == "pass" for r in others)


def test_a_face_half_a_tolerance_off_is_borderline_because_the_evidence_cannot_decide(
    part: Any, enqueued: list[str], django_capture_on_commit_callbacks: Any,
) -> None:
    mesh, regions = part
    target = largest_regions(mesh, regions)[3]
    points = sample_scan(mesh, regions, n=40_000, shift=(target, 0.5))
    with schema_context("alpha"):
        _, result = judge(points, edge=EDGE_ERROR @ np.linalg.inv(MISALIGN),
                          capture=django_capture_on_commit_callbacks)
    assert result.decision == "borderline"
    codes = {(r["code"], r["region"]) for r in result.reasons}
    assert ("borderline:uncertainty", target) in codes
    assert region_row(result, target)["p50_mm"] == pytest.approx(0.5, abs=0.05)


def test_a_misaligned_scan_abstains_naming_the_alignment_gates(
    part: Any, enqueued: list[str], django_capture_on_commit_callbacks: Any,
) -> None:
    mesh, regions = part
    points = sample_scan(mesh, regions, n=20_000)
    with schema_context("alpha"):  # the device sent no usable transform: identity
        _, result = judge(points, edge=np.eye(4), capture=django_capture_on_commit_callbacks)
    assert result.decision == "abstain"
    failed = {g["name"] for g in result.gates if not g["passed"]}
    assert {"alignment_rmse", "alignment_fitness"} <= failed
    assert result.reasons[0]["code"].startswith("gate:alignment")


def test_a_sparse_scan_abstains_on_density_and_coverage(
    part: Any, enqueued: list[str], django_capture_on_commit_callbacks: Any,
) -> None:
    mesh, regions = part
    points = sample_scan(mesh, regions, n=300)
    with schema_context("alpha"):
        _, result = judge(points, edge=np.linalg.inv(MISALIGN),
                          capture=django_capture_on_commit_callbacks)
    assert result.decision == "abstain"
    failed = {g["name"] for g in result.gates if not g["passed"]}
    assert {"point_density", "coverage"} <= failed


def test_an_old_calibration_abstains(
    part: Any, enqueued: list[str], django_capture_on_commit_callbacks: Any,
) -> None:
    mesh, regions = part
    points = sample_scan(mesh, regions, n=20_000)
    with schema_context("alpha"):
        asset, _, _ = setup_asset()
        contract = services.contract_create(
            asset_id=asset.pk, spec={**CONTRACT, "gates": {**CONTRACT["gates"],
                                                           "max_calibration_age_days": 30}})
        scan = make_processed_scan(asset, points, edge_transform=np.eye(4), calibration={
            "accuracy_mm": 0.03, "calibrated_at": "2025-01-01T00:00:00Z"})
        with django_capture_on_commit_callbacks(execute=True):
            run = services.qc_run_request(scan_id=scan.pk, contract_id=contract.pk)
            assert services.qc_run_execute(run_id=run.pk) == "done"
            assert services.qc_run_execute(run_id=run.pk) == "skipped"  # redelivery: no-op
        result = QcResult.objects.get(run=run)
    assert result.decision == "abstain"
    assert [g["name"] for g in result.gates if not g["passed"]] == ["calibration_age"]
    assert contract.version == 2
