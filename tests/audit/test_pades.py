"""PAdES levels of signed PDF reports: B-T against a real RFC 3161 service, B-LTA offline.

The timestamp authority is a real HTTP service on a local socket (tests/audit/tsa.py):
reports are signed through pyHanko's HTTPTimeStamper exactly as in production. B-LTA
reports are then validated by pyHanko's ETSI EN 319 102-1 LTA procedure with the TSA
stopped and every socket connection refused: only what the PDF embeds is used.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from django_tenants.utils import schema_context
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESIndeterminate, AdESPassed
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.policy_decl import (
    CertificateFetchingRule,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager

from audit import exports, keys, verify
from tests.audit.test_exports import _export, _note_key
from tests.audit.tsa import QUERY_TYPE, TestTimestampAuthority
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
SIGNATURE = f"pdf signature {exports.SIGNATURE_FIELD}"


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[TestTimestampAuthority]:
    authority = TestTimestampAuthority("D2R test TSA", tmp_path).start()
    yield authority
    authority.stop()


@pytest.fixture
def pades(settings: Any, tsa: TestTimestampAuthority) -> Callable[[str], None]:
    """Configure the report level with the test TSA, as the environment would."""

    def configure(level: str) -> None:
        settings.AUDIT_TSA_URL = tsa.url
        settings.AUDIT_TSA_ROOTS_FILE = str(tsa.root_file)
        settings.AUDIT_PDF_PADES_LEVEL = level

    return configure


@contextmanager
def offline() -> Iterator[None]:
    """Refuse every new socket connection (the database connection is already open)."""

    def refuse(self: socket.socket, address: object) -> None:
        raise AssertionError(f"network access during offline validation: {address}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        yield


def _asn1_cert(pem: bytes) -> asn1_x509.Certificate:
    from pyhanko.keys import load_certs_from_pemder_data

    return next(iter(load_certs_from_pemder_data(pem)))


def _pdf_ca() -> asn1_x509.Certificate:
    with schema_context("alpha"):
        return _asn1_cert(keys.pdf_identity().ca_cert_pem)


def _signature(pdf: bytes) -> Any:
    return next(
        s
        for s in PdfFileReader(io.BytesIO(pdf)).embedded_signatures
        if s.field_name == exports.SIGNATURE_FIELD
    )


def _lta_spec(*roots: asn1_x509.Certificate) -> PdfSignatureValidationSpec:
    """Revocation data required for every certificate, and none fetched: local only."""
    return PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(
                trust_manager=SimpleTrustManager.build(trust_roots=list(roots)),
                revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO),
            ),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                RevinfoOnlineFetchingRule.LOCAL_ONLY,
                certificate_fetching_rule=CertificateFetchingRule.NEVER_FETCH,
            ),
        )
    )


def _verify_cli(pdf: bytes, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        [sys.executable, "-m", "audit.verify", str(path), "--key", _note_key(), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_b_t_timestamp_comes_from_the_tsa_over_http_and_verifies(
    pades: Callable[[str], None], tsa: TestTimestampAuthority, tmp_path: Path
) -> None:
    # Given a timestamp authority configured for B-T
    pades("B-T")
    # When a PDF report is exported
    _, pdf = _export("pdf")
    # Then the TSA was asked over HTTP with RFC 3161 queries (pyHanko's first one sizes
    # the signature container)
    assert tsa.queries == [QUERY_TYPE, QUERY_TYPE]
    # and the signature carries its token, over the signature value, valid and trusted
    signature = _signature(pdf)
    status = validate_pdf_signature(
        signature,
        ValidationContext(trust_roots=[_pdf_ca()], allow_fetching=False),
        ts_validation_context=ValidationContext(
            trust_roots=[_asn1_cert(tsa.root_pem)], allow_fetching=False
        ),
    )
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    stamp = status.timestamp_validity
    assert stamp is not None and stamp.intact and stamp.valid and stamp.trusted
    assert stamp.signing_cert.subject.native["common_name"] == "D2R test TSA"
    token = verify._timestamp_token(signature)
    imprint = token["encap_content_info"]["content"].parsed["message_imprint"]
    assert imprint["hash_algorithm"]["algorithm"].native == "sha256"
    assert (
        imprint["hashed_message"].native
        == hashlib.sha256(signature.signer_info["signature"].native).digest()
    )
    # and the offline verifier checks and reports it
    report = verify.verify_pdf(pdf, pinned_keys=[_note_key()], pinned_tsa_certs=[tsa.root_pem])
    assert report.checks[1] == "PAdES B-T"
    assert report.checks[2].startswith(
        f"signature timestamp {stamp.timestamp.isoformat()} by Common Name: D2R test TSA: "
        "imprint matches the signature, token intact, TSA trusted"
    )
    assert report.notes == []
    tsa.stop()  # the command line, offline, with the TSA root pinned
    result = _verify_cli(pdf, tmp_path, "--tsa-cert", str(tsa.root_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   PAdES B-T" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1] == "VERIFIED"


def test_unpinned_timestamp_is_checked_for_integrity_and_said_so(
    pades: Callable[[str], None],
) -> None:
    pades("B-T")
    _, pdf = _export("pdf")
    report = verify.verify_pdf(pdf, pinned_keys=[_note_key()])
    assert report.checks[1] == "PAdES B-T"
    assert report.notes == [
        "timestamps checked for integrity only; pin the timestamp authority's root with "
        "--tsa-cert to trust their time"
    ]


def test_pinning_the_workspace_pdf_ca_trusts_the_certificates_it_issued() -> None:
    # B-B, the default: the signer's certificate is issued by the workspace's PDF CA.
    _, pdf = _export("pdf")
    # The auditor takes the CA from the workspace's published keys.
    published = make_user("alpha", role="auditor", name="ca").client.get("/api/v1/audit/keys")
    ca_pem = next(k["public"] for k in published.json() if k["kind"] == "pdf_ca").encode()
    with schema_context("alpha"):
        assert ca_pem == keys.pdf_identity().ca_cert_pem
    with schema_context("beta"):
        other_ca_pem = keys.pdf_identity().ca_cert_pem
    report = verify.verify_pdf(pdf, pinned_keys=[_note_key()], pinned_certs=[ca_pem])
    assert report.checks[:2] == [
        "1 PDF signature(s): intact, whole file (PAdES updates aside), trusted certificate",
        "PAdES B-B",
    ]
    with pytest.raises(verify.VerificationError) as caught:
        verify.verify_pdf(pdf, pinned_keys=[_note_key()], pinned_certs=[other_ca_pem])
    assert (caught.value.where, caught.value.why) == (
        SIGNATURE,
        "signed by a certificate that is not trusted",
    )


def _transplant_timestamp(into: bytes, donor: bytes) -> bytes:
    """``into`` with its signature timestamp replaced by ``donor``'s (a valid token from
    the same TSA, over another signature): the PDF's byte range stays intact."""
    from asn1crypto import cms

    target = _signature(into)
    content_info = cms.ContentInfo.load(bytes(target.sig_object["/Contents"]))
    signer_info = content_info["content"]["signer_infos"][0]
    signer_info["unsigned_attrs"] = _signature(donor).signer_info["unsigned_attrs"].copy()
    new_hex = content_info.dump(force=True).hex().encode("ascii")
    _, start, end, _ = (int(x) for x in target.sig_object["/ByteRange"])
    room = end - start - 2  # between "<" and ">"
    assert len(new_hex) <= room
    return into[: start + 1] + new_hex.ljust(room, b"0") + into[end - 1 :]


def test_tampered_or_untrusted_timestamp_fails_by_name(
    pades: Callable[[str], None], tsa: TestTimestampAuthority, tmp_path: Path
) -> None:
    pades("B-T")
    _, pdf = _export("pdf")
    _, other = _export("pdf")
    # A token moved from another report: the document digest still holds, the time does not.
    tampered = _transplant_timestamp(pdf, other)
    with pytest.raises(verify.VerificationError) as caught:
        verify.verify_pdf(tampered, pinned_keys=[_note_key()], pinned_tsa_certs=[tsa.root_pem])
    assert caught.value.where == f"{SIGNATURE} timestamp"
    assert caught.value.why == (
        "imprint does not match the signature (timestamp taken over something else)"
    )
    # A genuine token from a TSA the auditor does not trust.
    stranger = TestTimestampAuthority("Unknown TSA", tmp_path).start()
    stranger.stop()
    with pytest.raises(verify.VerificationError) as caught:
        verify.verify_pdf(pdf, pinned_keys=[_note_key()], pinned_tsa_certs=[stranger.root_pem])
    assert caught.value.where == f"{SIGNATURE} timestamp"
    assert caught.value.why.startswith("timestamp authority is not trusted")
    result = _verify_cli(pdf, tmp_path, "--tsa-cert", str(stranger.root_file))
    assert result.returncode == 1
    assert result.stdout.startswith(f"FAILED {SIGNATURE} timestamp: timestamp authority is not")


def test_b_lta_validates_as_lta_offline_from_embedded_data_only(
    pades: Callable[[str], None], tsa: TestTimestampAuthority, tmp_path: Path
) -> None:
    # Given a TSA and the default level with one (B-LTA)
    pades("B-LTA")
    # When a PDF report is exported
    _, pdf = _export("pdf")
    assert tsa.crl_fetches >= 1  # the TSA chain's CRL, fetched from its distribution point
    tsa.stop()
    reader = PdfFileReader(io.BytesIO(pdf))
    kinds = [(s.field_name, s.sig_object_type) for s in reader.embedded_signatures]
    # Then: the signature, then a document timestamp over the DSS
    assert kinds == [
        (exports.SIGNATURE_FIELD, "/Sig"),
        (exports.DOCUMENT_TIMESTAMP_FIELD, "/DocTimeStamp"),
    ]
    dss = reader.root["/DSS"]
    certs = {
        asn1_x509.Certificate.load(c.get_object().data).subject.native["common_name"]
        for c in dss["/Certs"]
    }
    assert {
        "D2R Cloud audit reports (alpha)",
        "D2R Cloud audit report CA (alpha)",
        "D2R test TSA",
    } <= certs
    crl_issuers = sorted(
        asn1_crl.CertificateList.load(c.get_object().data).issuer.native["common_name"]
        for c in dss["/CRLs"]
    )
    assert "D2R Cloud audit report CA (alpha)" in crl_issuers
    assert "D2R test TSA root" in crl_issuers
    # and pyHanko's LTA validation passes with revocation data required for every
    # certificate, from the embedded data only (no fetching, no socket)
    signature = reader.embedded_signatures[0]
    spec = _lta_spec(_pdf_ca(), _asn1_cert(tsa.root_pem))
    with offline():
        result = asyncio.run(ades_lta_validation(signature, spec))
    assert result.ades_subindic == AdESPassed.OK, result.failure_msg
    assert result.oldest_evidence_record_timestamp is not None  # the document timestamp
    assert result.signature_timestamp_status is not None
    assert result.signature_timestamp_status.ades_subindic == AdESPassed.OK
    status = result.api_status
    assert status is not None and status.bottom_line
    assert status.modification_level.name == "LTA_UPDATES"
    # the offline verifier reports the level and what makes it
    key = _note_key()
    with offline():
        report = verify.verify_pdf(pdf, pinned_keys=[key], pinned_tsa_certs=[tsa.root_pem])
    assert report.checks[:2] == [
        "1 PDF signature(s): intact, whole file (PAdES updates aside), trusted certificate",
        "PAdES B-LTA",
    ]
    assert any(c.startswith("validation data (DSS): ") for c in report.checks)
    assert any(
        c.startswith("document timestamp ") and c.endswith("TSA trusted") for c in report.checks
    )
    # and it still renders
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm, "poppler-utils is installed by tools/sysdeps.py"
    (tmp_path / "report.pdf").write_bytes(pdf)
    subprocess.run(
        [pdftoppm, "-r", "40", "-png", str(tmp_path / "report.pdf"), str(tmp_path / "page")],
        check=True,
    )
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages and all(p.stat().st_size > 1000 for p in pages)


def test_b_t_without_embedded_validation_data_is_not_lta(
    pades: Callable[[str], None], tsa: TestTimestampAuthority
) -> None:
    # The same offline LTA check on a B-T report: no DSS, so no revocation data.
    pades("B-T")
    _, pdf = _export("pdf")
    tsa.stop()
    result = asyncio.run(
        ades_lta_validation(_signature(pdf), _lta_spec(_pdf_ca(), _asn1_cert(tsa.root_pem)))
    )
    assert isinstance(result.ades_subindic, AdESIndeterminate)
    assert result.oldest_evidence_record_timestamp is None


def test_content_added_after_an_lta_report_is_refused(
    pades: Callable[[str], None], tsa: TestTimestampAuthority
) -> None:
    pades("B-LTA")
    _, pdf = _export("pdf")
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    writer.root["/Lang"] = generic.TextStringObject("fr")
    writer.update_root()
    edited = io.BytesIO()
    writer.write(edited)
    with pytest.raises(verify.VerificationError) as caught:
        verify.verify_pdf(edited.getvalue(), pinned_keys=[_note_key()])
    assert caught.value.where == SIGNATURE
    assert caught.value.why == (
        "does not cover the whole file (coverage ENTIRE_REVISION, later changes OTHER): "
        "content was added after signing"
    )


def _settings_level(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Load the base settings in a fresh interpreter with only ``environment``; print the level."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "SECRET_KEY": "x",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "DJANGO_SETTINGS_MODULE": "d2r.settings.base",
        "D2R_ENV_FILE": "/nonexistent",
        **environment,
    }
    code = "import django.conf as c; print(c.settings.AUDIT_PDF_PADES_LEVEL)"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("environment", "error"),
    [
        ({"AUDIT_PDF_PADES_LEVEL": "B-LTA"}, "PAdES B-LTA needs AUDIT_TSA_URL."),
        ({"AUDIT_PDF_PADES_LEVEL": "B-T"}, "PAdES B-T needs AUDIT_TSA_URL."),
        (
            {"AUDIT_PDF_PADES_LEVEL": "LTA"},
            "AUDIT_PDF_PADES_LEVEL must be B-B, B-T, B-LT or B-LTA.",
        ),
        (
            {"AUDIT_TSA_URL": "http://tsa.example/", "AUDIT_PDF_PADES_LEVEL": "B-LT"},
            "PAdES B-LT needs AUDIT_TSA_ROOTS_FILE",
        ),
    ],
)
def test_settings_refuse_a_level_they_cannot_reach(environment: dict[str, str], error: str) -> None:
    result = _settings_level(environment)
    assert result.returncode == 1
    assert f"django.core.exceptions.ImproperlyConfigured: {error}" in result.stderr


@pytest.mark.parametrize(
    ("environment", "level"),
    [
        ({}, "B-B"),
        ({"AUDIT_TSA_URL": "http://tsa.example/"}, "B-T"),  # no roots: no long-term data
        ({"AUDIT_TSA_URL": "http://tsa.example/", "AUDIT_TSA_ROOTS_FILE": "/roots.pem"}, "B-LTA"),
    ],
)
def test_default_level_is_the_highest_the_settings_can_reach(
    environment: dict[str, str], level: str
) -> None:
    result = _settings_level(environment)
    assert result.stdout.strip() == level, result.stderr
