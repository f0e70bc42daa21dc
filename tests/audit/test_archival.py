"""Renewal of B-LTA reports' archival timestamp chains (ADR 0004), against real local TSAs.

A report is signed at B-LTA through one test TSA; the TSA then "rotates" (a second
service with a longer-lived certificate, both roots trusted) and the renewal appends
fresh validation data and a new document timestamp. The renewed report must still pass
pyHanko's ETSI LTA validation with every socket refused, and ``d2r-verify``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import crl as asn1_crl
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django_tenants.utils import schema_context
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.validation.ades import ades_lta_validation

from audit import exports, services, verify
from audit.models import Entry, ExportJob
from tests.audit.test_exports import _export, _note_key
from tests.audit.test_pades import _asn1_cert, _lta_spec, _pdf_ca, offline
from tests.audit.tsa import TestTimestampAuthority

pytestmark = pytest.mark.django_db


@pytest.fixture
def first_tsa(tmp_path: Path) -> Iterator[TestTimestampAuthority]:
    authority = TestTimestampAuthority("D2R test TSA", tmp_path).start()  # 1-year certificate
    yield authority
    authority.stop()


@pytest.fixture
def second_tsa(tmp_path: Path) -> Iterator[TestTimestampAuthority]:
    authority = TestTimestampAuthority(
        "D2R test TSA 2", tmp_path, validity=dt.timedelta(days=3 * 365)
    ).start()
    yield authority
    authority.stop()


@pytest.fixture
def lta(settings: Any, first_tsa: TestTimestampAuthority) -> None:
    settings.AUDIT_TSA_URL = first_tsa.url
    settings.AUDIT_TSA_ROOTS_FILE = str(first_tsa.root_file)
    settings.AUDIT_PDF_PADES_LEVEL = "B-LTA"


@pytest.fixture
def rotate(
    settings: Any, tmp_path: Path, first_tsa: TestTimestampAuthority,
    second_tsa: TestTimestampAuthority,
) -> Callable[[], None]:
    """Move to the second TSA, keeping the first one's root trusted (as operators must)."""

    def move() -> None:
        roots = tmp_path / "tsa-roots.pem"
        roots.write_bytes(first_tsa.root_pem + second_tsa.root_pem)
        settings.AUDIT_TSA_URL = second_tsa.url
        settings.AUDIT_TSA_ROOTS_FILE = str(roots)

    return move


def _stored(job: ExportJob) -> bytes:
    with schema_context("alpha"), default_storage.open(job.file_name, "rb") as handle:
        return handle.read()


def _job(pk: int) -> ExportJob:
    with schema_context("alpha"):
        return ExportJob.objects.get(pk=pk)


def _renew(job: ExportJob, now: dt.datetime | None = None) -> str:
    with schema_context("alpha"):
        return services.export_renew_archival(job_id=job.pk, now=now)


def _renewals() -> list[dict[str, Any]]:
    with schema_context("alpha"):
        return [json.loads(e.payload)
                for e in Entry.objects.filter(action="audit.export.renewed").order_by("seq")]


def test_due_report_gets_a_new_archival_timestamp_and_still_validates_as_lta_offline(
    lta: None, rotate: Callable[[], None], first_tsa: TestTimestampAuthority,
    second_tsa: TestTimestampAuthority,
) -> None:
    # Given a B-LTA report whose document timestamp's TSA certificate expires in a year
    job, pdf = _export("pdf")
    assert job.pades_level == "B-LTA"
    expires = first_tsa.cert.not_valid_after_utc
    assert job.archival_expires_at == expires
    # and a TSA that has since moved to a new certificate
    rotate()
    # When the renewal runs a month before that certificate expires
    now = expires - dt.timedelta(days=30)
    assert _renew(job, now) == "renewed"
    # Then the report is the same bytes followed by incremental updates only
    renewed_job = _job(job.pk)
    renewed = _stored(renewed_job)
    assert renewed.startswith(pdf) and len(renewed) > len(pdf)
    # with one more document timestamp, from the new TSA, after the signature and the first
    reader = PdfFileReader(io.BytesIO(renewed))
    assert [(s.field_name, s.sig_object_type) for s in reader.embedded_signatures] == [
        (exports.SIGNATURE_FIELD, "/Sig"),
        (exports.DOCUMENT_TIMESTAMP_FIELD, "/DocTimeStamp"),
        (f"{exports.DOCUMENT_TIMESTAMP_FIELD}2", "/DocTimeStamp"),
    ]
    newest = reader.embedded_signatures[-1]
    assert newest.signer_cert.subject.native["common_name"] == "D2R test TSA 2"
    # and fresh revocation data for the first TSA's chain, taken at renewal
    crl_issuers = [
        asn1_crl.CertificateList.load(c.get_object().data).issuer.native["common_name"]
        for c in reader.root["/DSS"]["/CRLs"]
    ]
    assert crl_issuers.count("D2R test TSA root") >= 2
    assert "D2R test TSA 2 root" in crl_issuers
    # and the row points at the new file (the old one is kept: a valid prefix of it)
    assert renewed_job.sha256 == hashlib.sha256(renewed).hexdigest() != job.sha256
    assert renewed_job.file_name != job.file_name and _stored(job) == pdf
    assert renewed_job.archival_expires_at == second_tsa.cert.not_valid_after_utc
    assert renewed_job.pades_level == "B-LTA"
    # and the renewal is logged with both digests and the new timestamp's time
    stamp_time = newest.signed_data["encap_content_info"]["content"].parsed["gen_time"].native
    [entry] = _renewals()
    assert entry["old_sha256"] == job.sha256 and entry["sha256"] == renewed_job.sha256
    assert entry["timestamp"] == stamp_time.isoformat()
    assert entry["document_timestamps"] == 2
    assert entry["bytes_added"] == len(renewed) - len(pdf)
    # and, with both TSAs gone and no socket, the original signature still validates at
    # LTA from what the file embeds
    first_tsa.stop()
    second_tsa.stop()
    spec = _lta_spec(_pdf_ca(), _asn1_cert(first_tsa.root_pem), _asn1_cert(second_tsa.root_pem))
    with offline():
        result = asyncio.run(ades_lta_validation(reader.embedded_signatures[0], spec))
    assert result.ades_subindic == AdESPassed.OK, result.failure_msg
    assert result.oldest_evidence_record_timestamp is not None
    status = result.api_status
    assert status is not None and status.bottom_line
    assert status.modification_level.name == "LTA_UPDATES"
    # and d2r-verify still verifies it, at B-LTA, both document timestamps trusted
    with offline():
        report = verify.verify_pdf(
            renewed, pinned_keys=[_note_key()],
            pinned_tsa_certs=[first_tsa.root_pem, second_tsa.root_pem],
        )
    assert report.checks[:2] == [
        "1 PDF signature(s): intact, whole file (PAdES updates aside), trusted certificate",
        "PAdES B-LTA",
    ]
    stamps = [c for c in report.checks if c.startswith("document timestamp ")]
    assert len(stamps) == 2 and all(c.endswith("TSA trusted") for c in stamps)
    # When it runs again: not due any more (the new certificate lasts three years)
    assert _renew(renewed_job, now) == "not_due"
    assert _job(job.pk).sha256 == renewed_job.sha256
    assert len(_renewals()) == 1


def test_report_not_due_or_without_a_newer_tsa_certificate_is_left_alone(
    lta: None, settings: Any, first_tsa: TestTimestampAuthority
) -> None:
    job, pdf = _export("pdf")
    queries = len(first_tsa.queries)
    # Not due: the certificate outlives the margin; the TSA is not even asked
    settings.AUDIT_PDF_RENEW_BEFORE_DAYS = 30
    assert _renew(job) == "not_due"
    assert len(first_tsa.queries) == queries
    # Due, but the TSA still signs with the same certificate: a new timestamp from it
    # would not last longer, so nothing is written (retried on the next run)
    assert job.archival_expires_at is not None
    assert _renew(job, job.archival_expires_at - dt.timedelta(days=10)) == "tsa_not_rotated"
    assert len(first_tsa.queries) == queries + 1  # one probe of its current certificate
    after = _job(job.pk)
    assert (after.sha256, after.file_name) == (job.sha256, job.file_name)
    assert _stored(after) == pdf
    assert _renewals() == []


@pytest.mark.parametrize("level", ["B-B", "B-LT"])
def test_reports_below_b_lta_are_left_alone(
    level: str, settings: Any, first_tsa: TestTimestampAuthority
) -> None:
    if level != "B-B":
        settings.AUDIT_TSA_URL = first_tsa.url
        settings.AUDIT_TSA_ROOTS_FILE = str(first_tsa.root_file)
    settings.AUDIT_PDF_PADES_LEVEL = level
    job, pdf = _export("pdf")
    assert (job.pades_level, job.archival_expires_at) == (level, None)
    assert _renew(job, dt.datetime(2100, 1, 1, tzinfo=dt.UTC)) == "not_lta"
    after = _job(job.pk)
    assert (after.sha256, after.file_name) == (job.sha256, job.file_name)
    assert _stored(after) == pdf
    assert _renewals() == []


def test_daily_task_renews_due_reports_and_reads_older_rows_once(
    lta: None, rotate: Callable[[], None]
) -> None:
    from audit.tasks import export_archival_renew_task

    schedule = django_settings.CELERY_BEAT_SCHEDULE["audit-archival-renew"]
    assert schedule == {"task": "audit.export_archival_renew_all_task", "schedule": 86400.0}
    lta_job, _ = _export("pdf")
    json_job, _ = _export("json")
    with schema_context("alpha"):  # a report made before the level was recorded
        ExportJob.objects.filter(pk=lta_job.pk).update(pades_level="", archival_expires_at=None)
    rotate()
    with schema_context("alpha"):
        assert export_archival_renew_task.apply().get() == {"renewed": 1}
    renewed = _job(lta_job.pk)
    assert renewed.sha256 != lta_job.sha256 and renewed.pades_level == "B-LTA"
    assert _job(json_job.pk).sha256 == json_job.sha256
    with schema_context("alpha"):  # nothing due any more: nothing is even opened
        assert export_archival_renew_task.apply().get() == {}
    assert len(_renewals()) == 1
