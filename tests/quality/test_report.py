"""The signed inspection report shows the run's pictures and per-region table."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django_tenants.utils import schema_context

from audit import services as audit_services
from tests.quality.helpers import largest_regions, sample_scan
from tests.quality.test_pipeline import EDGE_ERROR, MISALIGN, judge, part  # noqa: F401

pytestmark = pytest.mark.django_db


def test_report_pdf_has_heatmap_histogram_and_regions(
    part: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    import numpy as np

    from quality import services, tasks

    monkeypatch.setattr(services, "publish", lambda *a, **k: None)
    monkeypatch.setattr(tasks.qc_run_execute_task, "apply_async", lambda args, queue: None)
    mesh, regions = part
    points = sample_scan(mesh, regions, n=20_000)
    with schema_context("alpha"):
        _, result = judge(points, edge=EDGE_ERROR @ np.linalg.inv(MISALIGN),
                          capture=django_capture_on_commit_callbacks)
        job = audit_services.export_request(kind="pdf", requested_by="user:auditor",
                                            receipt_id=str(result.receipt_id))
        job = audit_services.export_run(job_id=job.pk)
        with default_storage.open(job.file_name, "rb") as handle:
            pdf = handle.read()
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert "Per-region results" in text and "Deviation" in text
    biggest = largest_regions(mesh, regions)[0]
    assert any(line.split()[:1] == [str(biggest)] for line in text.splitlines())
    images = subprocess.run(["pdfimages", "-list", str(path)], check=True,
                            capture_output=True, text=True).stdout.splitlines()[2:]
    assert len(images) >= 2  # heatmap and histogram
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(path), str(tmp_path / "page")],
                   check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages and pages[0].stat().st_size > 5000
    shots = Path(__file__).resolve().parents[2] / ".d2r" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    for page in pages[:2]:  # kept for a person to look at
        (shots / f"report-{page.name}").write_bytes(page.read_bytes())
