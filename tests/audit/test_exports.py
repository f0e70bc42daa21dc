"""Signed exports: the JWS evidence bundle and the PAdES-signed PDF report, verified offline."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django_tenants.utils import schema_context

from audit import services, verify
from audit.ledger.entry import EntryFields
from audit.models import Entry, ExportJob, LogKey
from tests.audit.factories import receipt_data
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _export(kind: str, *, with_receipt: bool = True) -> tuple[ExportJob, bytes]:
    with schema_context("alpha"):
        services.audit_append(action="auth.login", actor="user:qc@alpha.test",
                              object_type="auth.User", object_id=1, payload={"ip": "10.0.0.1"})
        receipt = services.receipt_create(data=receipt_data(), actor="system:processing")
        job = services.export_request(kind=kind, requested_by="user:auditor@alpha.test",
                                      receipt_id=str(receipt.id) if with_receipt else None)
        job = services.export_run(job_id=job.pk)
        assert job.status == ExportJob.Status.DONE and job.progress == 100
        with default_storage.open(job.file_name, "rb") as handle:
            return job, handle.read()


def _note_key() -> str:
    with schema_context("alpha"):
        return LogKey.objects.get(kind="note").public


def test_json_bundle_verifies_offline_with_the_pinned_key(tmp_path: Path) -> None:
    job, token = _export("json")
    report = verify.verify_token(token, pinned_keys=[_note_key()])
    assert report.notes == []
    assert report.checks[0].startswith("bundle signature (EdDSA")
    bundle = report.bundle
    assert bundle is not None
    # A receipt's export holds its own entry, proven to the head; not the whole log.
    assert [e["action"] for e in bundle["entries"]] == ["qc.receipt"]
    assert bundle["scope"] == {"from_seq": 1, "to_seq": 2}
    assert bundle["tree_heads"][-1]["size"] == 3
    assert bundle["receipts"][0]["inclusion"]["tree_size"] == 3
    assert "range proof: entries 1..1 are in the signed tree head of size 3" in report.checks
    # The command line, as an auditor runs it, with no database and no Django settings.
    path = tmp_path / "evidence.jws"
    path.write_bytes(token)
    result = subprocess.run([sys.executable, "-m", "audit.verify", str(path), "--key",
                             _note_key()], capture_output=True, text=True, cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "VERIFIED"
    with schema_context("alpha"):  # the export itself is logged
        assert Entry.objects.filter(action="audit.export.completed",
                                             object_id=str(job.pk)).exists()


def test_whole_log_export_holds_every_entry() -> None:
    _, token = _export("json", with_receipt=False)
    report = verify.verify_token(token, pinned_keys=[_note_key()])
    assert report.bundle is not None and "scope" not in report.bundle
    assert [e["action"] for e in report.bundle["entries"]] == [
        "auth.login", "qc.receipt", "audit.export.requested"]


def _period_log() -> tuple[dt.datetime, dt.datetime]:
    """Entries 0-299 before the period, 300-599 in it, 600-609 after; heads along the way."""
    from django.db import transaction

    def append(first: int, count: int) -> None:
        with transaction.atomic():
            for i in range(first, first + count):
                services.audit_append(action="qc.decision", actor="user:qc@alpha.test",
                                      object_type="inspections.QcResult", object_id=i,
                                      payload={"n": i})

    with schema_context("alpha"):
        append(0, 300)
        services.tree_head_issue()
        start = Entry.objects.get(seq=299).time + dt.timedelta(microseconds=1)
        append(300, 300)
        services.tree_head_issue()
        end = Entry.objects.get(seq=599).time + dt.timedelta(microseconds=1)
        append(600, 10)
    return start, end


def test_a_period_export_is_proven_to_the_head_by_a_range_proof() -> None:
    start, end = _period_log()
    auditor = make_user("alpha", role="auditor", name="auditor")
    response = auditor.client.post("/api/v1/audit/exports", {
        "kind": "json", "from_time": start.isoformat(), "to_time": end.isoformat()},
        content_type="application/json")
    assert response.status_code == 202, response.content
    with schema_context("alpha"):
        job = services.export_run(job_id=response.json()["id"])
        with default_storage.open(job.file_name, "rb") as handle:
            token = handle.read()
    report = verify.verify_token(token, pinned_keys=[_note_key()])
    bundle = report.bundle
    assert bundle is not None
    assert bundle["scope"] == {"from_seq": 300, "to_seq": 600}
    assert [e["seq"] for e in bundle["entries"]] == list(range(300, 600))
    head = bundle["tree_heads"][-1]["size"]
    assert head > 610  # the export signed a head over everything first
    assert len(bundle["range_proof"]["proof"]) <= 2 * head.bit_length()
    assert "2 consistency proofs between the signed heads" in report.checks

    # An entry of the period altered, its own hash recomputed: the range proof breaks.
    keys = [verify.VerifierKey.parse(_note_key())]
    last = bundle["entries"][-1]
    last["actor"] = "user:mallory@alpha.test"
    last["entry_hash"] = EntryFields(
        seq=last["seq"], time=last["time"], actor=last["actor"], action=last["action"],
        object_type=last["object_type"], object_id=last["object_id"],
        payload_sha256=last["payload_sha256"], prev_hash=last["prev_hash"]).entry_hash()
    with pytest.raises(verify.VerificationError) as failure:
        verify.verify_bundle_dict(bundle, keys, verify.Report())
    assert failure.value.where == "entries 300..599"
    assert "do not match the signed tree head" in failure.value.why
    # An entry dropped from the period is named by the scope.
    bundle["entries"].pop()
    with pytest.raises(verify.VerificationError, match=r"scope 300\.\.599 but 299 entries"):
        verify.verify_bundle_dict(bundle, keys, verify.Report())


def test_a_period_must_end_after_it_starts() -> None:
    auditor = make_user("alpha", role="auditor", name="auditor")
    response = auditor.client.post("/api/v1/audit/exports", {
        "kind": "json", "from_time": "2026-11-02T00:00:00Z", "to_time": "2026-11-01T00:00:00Z"},
        content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_bundle_from_another_key_is_refused() -> None:
    _, token = _export("json", with_receipt=False)
    with schema_context("beta"):
        services.tree_head_issue()
        beta_key = LogKey.objects.get(kind="note").public
    with pytest.raises(verify.VerificationError, match="not trusted"):
        verify.verify_token(token, pinned_keys=[beta_key])


def test_pdf_report_is_signed_renders_and_verifies(tmp_path: Path) -> None:
    _, pdf = _export("pdf")
    assert pdf.startswith(b"%PDF")
    report = verify.verify_pdf(pdf, pinned_keys=[_note_key()])
    assert report.checks[0].startswith("1 PDF signature(s)")

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    with schema_context("alpha"):
        cert_pem = LogKey.objects.get(kind="pdf").public.encode()
    from pyhanko.keys import load_certs_from_pemder_data

    signature = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    status = validate_pdf_signature(signature, ValidationContext(
        trust_roots=list(load_certs_from_pemder_data(cert_pem)), allow_fetching=False))
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES

    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm, "poppler-utils is installed by tools/sysdeps.py"
    (tmp_path / "report.pdf").write_bytes(pdf)
    subprocess.run([pdftoppm, "-r", "40", "-png", str(tmp_path / "report.pdf"),
                    str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages and all(p.stat().st_size > 1000 for p in pages)
    text = subprocess.run(["pdftotext", str(tmp_path / "report.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert "BORDERLINE" in text.upper() and "icp-deviation" in text and "Proof summary" in text


def test_export_download_is_for_audit_roles_only() -> None:
    job, token = _export("json", with_receipt=False)
    auditor = make_user("alpha", role="auditor", name="auditor")
    response = auditor.client.get(f"/api/v1/audit/exports/{job.pk}/download")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == token
    operator = make_user("alpha", role="operator", name="operator")
    assert operator.client.get(f"/api/v1/audit/exports/{job.pk}/download").status_code == 403
