"""End to end on a real CAD part: LAZ scan → validate + canonical → align → deviate →
evaluate → artifacts → receipt, through the same services the Celery tasks call.

Prints `BENCH process_<n>m_e2e_seconds` (ingest stage plus QC stage, excluding the
time to make the synthetic LAZ and to store it), each stage, the points/s of the whole
run and the worker's peak RSS. Run: `.venv/bin/python benchmarks/run.py bench_pipeline`
(`BENCH_PIPELINE_POINTS`, default 10 000 000). Uses a throwaway workspace it deletes.
"""

from __future__ import annotations

import hashlib
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path

import django
import django.utils.timezone

django.setup()

import laspy  # noqa: E402
import numpy as np  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from d2r.db.privileged import privileged  # noqa: E402
from tenants import dbroles  # noqa: E402
from tenants import services as tenant_services  # noqa: E402
from tenants.models import Domain, Tenant  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PART = ROOT / "tests" / "fixtures" / "cad" / "featuretype.STL"
POINTS = int(os.environ.get("BENCH_PIPELINE_POINTS", "10000000"))
SLUG = "bench_pipeline"
INCH = 0.0254
CONTRACT = {  # 0.5 mm tolerance, 1.5 mm fail; gates on alignment, coverage and density
    "criteria": {"tolerance_mm": 0.5, "fail_mm": 1.5, "max_fraction_out": 0.02,
                 "max_fraction_fail": 0.001},
    "gates": {"max_alignment_rmse_mm": 0.3, "min_fitness": 0.95, "min_coverage": 0.7,
              "min_density_per_cm2": 5.0},
    "device_accuracy_mm": 0.03,
}


def _rigid(degrees: float, axis: list[float], translation: list[float]) -> np.ndarray:
    axis_v = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis_v[2], axis_v[1]], [axis_v[2], 0, -axis_v[0]],
                  [-axis_v[1], axis_v[0], 0]])
    a = np.deg2rad(degrees)
    m = np.eye(4)
    m[:3, :3] = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k
    m[:3, 3] = translation
    return m


def _scan_laz(path: Path) -> np.ndarray:
    """A scan of the part in metres, misaligned by 3°/2.7 cm; returns the edge transform."""
    from inspections.geometry.mesh import mesh_load, mesh_sample_points

    mesh = mesh_load(PART)
    points, _, _ = mesh_sample_points(mesh, POINTS, seed=7)
    points = points * INCH + np.random.default_rng(1).normal(0, 3e-5, points.shape)
    misalign = _rigid(3.0, [1, 2, 3], [0.02, -0.01, 0.015])
    scan = (np.c_[points, np.ones(len(points))] @ misalign.T)[:, :3]
    header = laspy.LasHeader(point_format=0, version="1.2")
    header.scales = np.array([1e-5, 1e-5, 1e-5])
    header.offsets = scan.min(axis=0)
    las = laspy.LasData(header)
    las.x, las.y, las.z = scan[:, 0], scan[:, 1], scan[:, 2]
    las.write(str(path))
    edge_error = _rigid(0.3, [0, 1, 1], [0.001, 0.0005, -0.001])
    return edge_error @ np.linalg.inv(misalign)


def main() -> None:
    from inspections import objectstore
    from inspections import services as inspections_services
    from inspections.models import Asset, Scan, Site
    from quality import services as quality_services
    from quality.models import QcResult
    from twins.services import cad_revision_create

    with privileged():
        if not Tenant.objects.filter(schema_name=SLUG).exists():
            tenant = tenant_services.tenant_request(slug=SLUG, name="Bench",
                                                   domain=f"{SLUG}.bench.localhost")
            tenant_services.tenant_provision(tenant_id=tenant.pk)
    quality_services.publish = lambda *a, **k: None  # no subscribers in a benchmark
    inspections_services.publish = lambda *a, **k: None
    try:
        with tempfile.TemporaryDirectory() as scratch:
            laz = Path(scratch) / "scan.laz"
            started = time.perf_counter()
            edge = _scan_laz(laz)
            print(f"BENCH pipeline_make_laz_seconds {time.perf_counter() - started:.2f}")
            data_size = laz.stat().st_size
            sha = hashlib.sha256(laz.read_bytes()).hexdigest()
            with schema_context(SLUG):
                asset = Asset.objects.create(site=Site.objects.create(name="Bench plant"),
                                             tag="FT-1", name="Feature part", kind="part")
                cad_revision_create(asset_id=asset.pk, data=PART.read_bytes(),
                                    filename="featuretype.STL", units="in", label="R1",
                                    author="bench", change_note="")
                contract = quality_services.contract_create(asset_id=asset.pk, spec=CONTRACT)
                key = objectstore.key_for(f"scans/raw/{uuid.uuid4()}")
                objectstore.upload_file(key, str(laz))
                scan = Scan.objects.create(
                    asset=asset, sha256=sha, size_bytes=data_size, encoding="laz", raw_key=key,
                    device="edge-bench", firmware="1.0", operator="bench",
                    calibration={"accuracy_mm": 0.03, "calibrated_at": "2026-11-01T00:00:00Z"},
                    edge_transform=[float(v) for v in edge.reshape(-1)],
                    received_at=django.utils.timezone.now(),
                    captured_at=django.utils.timezone.now())
                t0 = time.perf_counter()
                assert inspections_services.scan_process(scan_id=scan.pk) == "processed"
                t1 = time.perf_counter()
                run = quality_services.qc_run_request(scan_id=scan.pk, contract_id=contract.pk)
                assert quality_services.qc_run_execute(run_id=run.pk) == "done"
                t2 = time.perf_counter()
                result = QcResult.objects.get(run=run)
        total = t2 - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        millions = POINTS / 1e6
        print(f"BENCH pipeline_points {POINTS}")
        print(f"BENCH pipeline_laz_mb {data_size / 1e6:.1f}")
        print(f"BENCH pipeline_ingest_validate_canonical_seconds {t1 - t0:.2f}")
        print(f"BENCH pipeline_qc_seconds {t2 - t1:.2f}")
        print(f"BENCH process_{millions:g}m_e2e_seconds {total:.2f}")
        print(f"BENCH pipeline_mpts_per_s {millions / total:.2f}")
        print(f"BENCH pipeline_peak_rss_mb {peak_mb:.0f}")
        print(f"BENCH pipeline_decision {result.decision}")
    finally:
        connection.set_schema_to_public()
        with privileged():
            Domain.objects.filter(tenant__schema_name=SLUG).delete()
            Tenant.objects.filter(schema_name=SLUG).delete()
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{SLUG}" CASCADE')
            dbroles.tenant_role_drop(SLUG)


if __name__ == "__main__":
    main()
