"""Signed exports: the JWS evidence bundle and the PAdES-signed PDF report, verified offline."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django_tenants.utils import schema_context

from audit import services, verify
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
    assert [e["action"] for e in bundle["entries"]] == [
        "auth.login", "qc.receipt", "audit.export.requested"]
    assert bundle["tree_heads"][-1]["size"] == 3
    assert bundle["receipts"][0]["inclusion"]["tree_size"] == 3
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
