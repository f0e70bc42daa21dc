"""Writes of the audit log: entries, tree heads, receipts, exports (ADR 0004).

Every function is keyword-only and runs in one transaction. Appends and tree heads
serialise on one transaction-scoped advisory lock per schema, so concurrent writers
can never fork the chain or reuse a sequence number; the primary key on ``seq`` and
the unique ``entry_hash`` are the database's own last line of defence.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from audit import keys, selectors
from audit.ledger.checkpoint import Checkpoint, sign_checkpoint
from audit.ledger.entry import GENESIS_HASH, EntryFields, canonical_json, sha256_hex
from audit.ledger.merkle import HASH_SIZE, STRIDE, leaf_hash, stored_level
from audit.models import Entry, ExportJob, LogKey, MerkleNode, Receipt, TreeHead

logger = logging.getLogger(__name__)

OUTCOMES = ("pass", "borderline", "fail", "abstain")


class LogIntegrityError(RuntimeError):
    """The stored log does not match its own hashes or an earlier signed tree head."""


def _lock_log() -> None:
    """Serialise appends and tree heads of this schema until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('d2r.audit.' || current_schema(), 0))"
        )


def entry_time_text(value: dt.datetime) -> str:
    """The hashed text of an entry time: UTC, microseconds, ``Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_append(
    *, action: str, actor: str, object_type: str, object_id: str | int,
    payload: Mapping[str, Any] | None = None,
) -> Entry:
    """Append one entry to the current workspace's log and return it.

    Call it inside the transaction of the action it records: the entry commits or
    rolls back with it. The lock is held until that transaction ends, so sequence
    numbers are dense and each entry names the hash of the one before it.
    """
    payload_text = canonical_json(dict(payload or {}))
    with transaction.atomic():
        _lock_log()
        last = Entry.objects.order_by("-seq").values("seq", "entry_hash", "time").first()
        now = timezone.now()
        if last is not None and now < last["time"]:
            now = last["time"]  # entry times never go backwards, whatever the clocks do
        fields = EntryFields(
            seq=0 if last is None else last["seq"] + 1,
            time=entry_time_text(now), actor=str(actor), action=action,
            object_type=object_type, object_id=str(object_id),
            payload_sha256=sha256_hex(payload_text),
            prev_hash=GENESIS_HASH if last is None else last["entry_hash"],
        )
        return Entry.objects.create(
            seq=fields.seq, time=now, actor=fields.actor, action=action,
            object_type=object_type, object_id=fields.object_id, payload=payload_text,
            payload_sha256=fields.payload_sha256, prev_hash=fields.prev_hash,
            entry_hash=fields.entry_hash(), leaf_hash=fields.leaf_hash().hex(),
        )


def _nodes_extend(size: int) -> None:
    """Store the tile hashes (levels 8, 16 …) of every complete subtree within ``size``.

    Reads only what is new: the leaf hashes of entries appended since the last
    stored level-8 node, then the nodes below each higher level.
    """
    span = 1 << STRIDE
    level = STRIDE
    while size >> level:
        want = size >> level
        top = MerkleNode.objects.filter(level=level).aggregate(top=Max("index"))["top"]
        have = 0 if top is None else top + 1
        if want > have:
            lo, hi = have * span, want * span
            below = (selectors.leaf_hashes_range(lo, hi) if level == STRIDE
                     else selectors.node_hashes_range(level - STRIDE, lo, hi))
            if len(below) != (hi - lo) * HASH_SIZE:
                raise LogIntegrityError(f"log lacks level {level - STRIDE} hashes {lo}..{hi - 1}")
            hashes = stored_level(below)
            MerkleNode.objects.bulk_create(
                MerkleNode(level=level, index=have + i,
                           hash=hashes[i * HASH_SIZE : (i + 1) * HASH_SIZE].hex())
                for i in range(want - have))
        level += STRIDE


def _check_new_entries(start: int, size: int) -> None:
    """Recompute entries ``start .. size-1`` from their columns; raise on any mismatch."""
    prev = GENESIS_HASH
    if start:
        prev = Entry.objects.filter(seq=start - 1).values_list("entry_hash", flat=True).first()
        if prev is None:
            raise LogIntegrityError(f"entry {start - 1} is missing")
    expected = start
    rows = Entry.objects.filter(seq__gte=start).order_by("seq").values_list(
        "seq", "time", "actor", "action", "object_type", "object_id", "payload",
        "payload_sha256", "prev_hash", "entry_hash", "leaf_hash")
    for (seq, time, actor, action, object_type, object_id, payload, payload_sha256, prev_hash,
         entry_hash, stored_leaf) in rows.iterator(chunk_size=5000):
        if seq != expected:
            raise LogIntegrityError(f"entry {expected} is missing (found {seq})")
        data = EntryFields(seq=seq, time=entry_time_text(time), actor=actor, action=action,
                           object_type=object_type, object_id=object_id,
                           payload_sha256=payload_sha256, prev_hash=prev_hash).to_bytes()
        if (sha256_hex(payload) != payload_sha256 or prev_hash != prev
                or sha256_hex(data) != entry_hash or leaf_hash(data).hex() != stored_leaf):
            raise LogIntegrityError(f"entry {seq} does not match its hashes")
        prev = entry_hash
        expected += 1
    if expected != size:
        raise LogIntegrityError(f"log holds {expected} entries, expected {size}")


def _note_keys_ensure() -> list[str]:
    """Record the public keys of the current signers (idempotent); return vkeys."""
    vkeys = []
    for signer in keys.note_signers():
        vkey = signer.verifier().encode()
        LogKey.objects.get_or_create(kind=LogKey.Kind.NOTE, key_id=f"{signer.key_id:08x}",
                                     defaults={"public": vkey})
        vkeys.append(vkey)
    return vkeys


def pdf_key_ensure() -> keys.PdfSigningIdentity:
    """Record the workspace's PDF certificate and its CA (idempotent); return the identity."""
    identity = keys.pdf_identity()
    LogKey.objects.get_or_create(kind=LogKey.Kind.PDF, key_id=identity.fingerprint,
                                 defaults={"public": identity.cert_pem.decode("ascii")})
    LogKey.objects.get_or_create(kind=LogKey.Kind.PDF_CA, key_id=identity.ca_fingerprint,
                                 defaults={"public": identity.ca_cert_pem.decode("ascii")})
    return identity


def tree_head_issue() -> TreeHead:
    """Sign a tree head over every entry of the log; return it (on demand or by beat).

    Idempotent: when no entry was appended since the latest head, that head is
    returned. Before signing it recomputes the entries appended since the latest
    head and checks that the new tree extends it; it refuses (``LogIntegrityError``)
    to sign a log that was altered, so a signed head never blesses tampering.
    """
    with transaction.atomic():
        _lock_log()
        last = TreeHead.objects.order_by("-size", "-id").first()
        top = Entry.objects.aggregate(top=Max("seq"))["top"]
        size = 0 if top is None else top + 1
        if last is not None and last.size == size:
            return last
        start = last.size if last is not None else 0
        if size < start:
            raise LogIntegrityError(f"log holds {size} entries, latest tree head {start}")
        _check_new_entries(start, size)
        _nodes_extend(size)
        tree = selectors.stored_tree(size)
        if last is not None and tree.root(last.size).hex() != last.root_hash:
            raise LogIntegrityError(f"log no longer matches the tree head of size {last.size}")
        signers = keys.note_signers()
        _note_keys_ensure()
        root = tree.root()
        note = sign_checkpoint(Checkpoint(origin=keys.log_origin(), size=size, root_hash=root),
                               signers)
        return TreeHead.objects.create(size=size, root_hash=root.hex(), note=note,
                                       key_id=f"{signers[0].key_id:08x}")


@dataclass(frozen=True)
class RunReceiptData:
    """What a QC run was computed from and what it said: the contract of a receipt.

    The processing pipeline fills it; nothing here depends on its models. Enough to
    reproduce the run: the exact inputs (hashes), the device state, the algorithm and
    its parameters, every gate score, and why it abstained or failed.
    """

    subject_type: str  # e.g. "inspections.QcResult"
    subject_id: str
    scan_sha256: str
    cad_revision_sha256: str
    device: str
    firmware: str
    calibration: Mapping[str, Any]
    edge_transform: Sequence[Sequence[float]]  # 4x4 row-major
    configuration: Mapping[str, Any]
    algorithm_name: str
    algorithm_version: str
    parameters: Mapping[str, Any]
    gate_scores: Mapping[str, float]
    outcome: str  # pass | borderline | fail | abstain
    reasons: Sequence[str] = ()
    abstentions: Sequence[str] = ()
    failures: Sequence[str] = ()
    operator: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ``ValueError`` unless the receipt is well formed."""
        for name in ("scan_sha256", "cad_revision_sha256"):
            value = getattr(self, name)
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise ValueError(f"{name} must be 64 lowercase hex digits")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        if len(self.edge_transform) != 4 or any(len(row) != 4 for row in self.edge_transform):
            raise ValueError("edge_transform must be a 4x4 matrix")


def receipt_create(*, data: RunReceiptData, actor: str) -> Receipt:
    """Freeze a run receipt and log it; the entry's payload is the receipt document."""
    data.validate()
    with transaction.atomic():
        receipt = Receipt(subject_type=data.subject_type, subject_id=data.subject_id,
                          scan_sha256=data.scan_sha256,
                          cad_revision_sha256=data.cad_revision_sha256,
                          algorithm_version=data.algorithm_version, outcome=data.outcome)
        document = {"receipt_id": str(receipt.id), "kind": "d2r-run-receipt/1", **asdict(data)}
        receipt.document = canonical_json(document)
        receipt.entry = audit_append(action="qc.receipt", actor=actor,
                                     object_type=data.subject_type, object_id=data.subject_id,
                                     payload=document)
        receipt.save(force_insert=True)
    return receipt


def export_request(*, kind: str, requested_by: str, receipt_id: str | None = None,
                   from_time: dt.datetime | None = None,
                   to_time: dt.datetime | None = None) -> ExportJob:
    """Record an export job, log the request, and enqueue it after commit.

    Scope: the period ``[from_time, to_time)`` when either is given (open-ended on the
    other side), else the receipt's own entry when a receipt is given, else the whole log.
    """
    from audit.tasks import export_run_task

    if kind not in ExportJob.Kind.values:
        raise ValueError(f"unknown export kind {kind!r}")
    if from_time and to_time and from_time >= to_time:
        raise ValueError("from_time must be before to_time")
    with transaction.atomic():
        receipt = Receipt.objects.get(pk=receipt_id) if receipt_id else None
        job = ExportJob.objects.create(kind=kind, requested_by=requested_by, receipt=receipt,
                                       from_time=from_time, to_time=to_time)
        audit_append(action="audit.export.requested", actor=requested_by,
                     object_type="audit.ExportJob", object_id=job.pk,
                     payload={"kind": kind, "receipt": receipt_id,
                              "from_time": from_time.isoformat() if from_time else None,
                              "to_time": to_time.isoformat() if to_time else None})
        transaction.on_commit(lambda: export_run_task.delay(job.pk))
    return job


def _export_progress(job_id: int, progress: int) -> None:
    ExportJob.objects.filter(pk=job_id).update(progress=progress)


def _export_range(job: ExportJob) -> tuple[int, int] | None:
    """The entries an export covers (see ``export_request``); None for the whole log."""
    if job.from_time is None and job.to_time is None:
        if job.receipt_id is None:
            return None
        seq = Receipt.objects.values_list("entry_id", flat=True).get(pk=job.receipt_id)
        return seq, seq + 1
    entries = Entry.objects.all()
    if job.from_time is not None:
        entries = entries.filter(time__gte=job.from_time)
    if job.to_time is not None:
        entries = entries.filter(time__lt=job.to_time)
    bounds = entries.aggregate(first=Min("seq"), last=Max("seq"))
    if bounds["first"] is None:
        return 0, 0  # nothing in the period: the bundle carries the heads only
    return bounds["first"], bounds["last"] + 1


def export_run(*, job_id: int) -> ExportJob:
    """Build, sign and store an export (the task's one call).

    Idempotent: the job is claimed by a conditional UPDATE from ``pending``; a
    redelivered task finds it claimed and returns it unchanged.
    """
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from audit import exports

    if not ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.PENDING).update(
            status=ExportJob.Status.RUNNING, progress=5):
        return ExportJob.objects.get(pk=job_id)
    job = ExportJob.objects.get(pk=job_id)
    try:
        try:
            tree_head_issue()
        except LogIntegrityError:
            # Export anyway: the bundle carries the evidence, the verifier names the break.
            logger.exception("audit log integrity check failed while exporting")
        # The PDF certificate is recorded first, so the bundle inside the PDF lists it.
        identity = pdf_key_ensure() if job.kind == ExportJob.Kind.PDF else None
        _export_progress(job_id, 20)
        bundle = exports.bundle_build(
            receipt=job.receipt, seq_range=_export_range(job),
            progress=lambda p: _export_progress(job_id, 20 + p * 50 // 100))
        token = exports.bundle_sign(bundle)
        archival: dict[str, Any] = {}
        if job.kind == ExportJob.Kind.JSON:
            content, name = token.encode("ascii"), f"audit/exports/{job.pk}-evidence.jws"
        else:
            _export_progress(job_id, 75)
            assert identity is not None
            content = exports.report_pdf(bundle=bundle, token=token, receipt=job.receipt,
                                         identity=identity)
            name = f"audit/exports/{job.pk}-report.pdf"
            state = exports.archival_state(content)
            archival = {"pades_level": state.level, "archival_expires_at": state.expires_at}
        stored = default_storage.save(name, ContentFile(content))
        with transaction.atomic():
            ExportJob.objects.filter(pk=job_id).update(
                status=ExportJob.Status.DONE, progress=100, file_name=stored,
                sha256=sha256_hex(content), finished_at=timezone.now(), **archival)
            audit_append(action="audit.export.completed", actor="system",
                         object_type="audit.ExportJob", object_id=job_id,
                         payload={"kind": job.kind, "sha256": sha256_hex(content),
                                  "tree_size": bundle["tree_heads"][-1]["size"]
                                  if bundle["tree_heads"] else 0})
    except Exception as exc:
        ExportJob.objects.filter(pk=job_id).update(
            status=ExportJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}",
            finished_at=timezone.now())
        raise
    return ExportJob.objects.get(pk=job_id)


def export_renew_archival(*, job_id: int, now: dt.datetime | None = None) -> str:
    """Renew a B-LTA report's archival timestamp chain when it is due; return what happened.

    Due when the TSA certificate of the report's latest document timestamp expires
    within ``AUDIT_PDF_RENEW_BEFORE_DAYS`` of ``now``. Renewing validates that timestamp,
    adds fresh validation data (DSS) and a new document timestamp as incremental
    updates (``exports.renew_archival``), stores the result under a new key (the
    previous file stays, a valid prefix of the new one), and moves the row to it with an
    ``audit.export.renewed`` entry in the same transaction. Returns ``renewed``,
    ``not_due``, ``not_lta`` (B-B/B-T/B-LT: nothing to renew), ``tsa_not_rotated``
    (due, but the TSA still signs with a certificate that expires no later: retried
    next run) or ``skipped`` (not a finished PDF, or renewed concurrently).

    Idempotent: a renewed report is no longer due (its latest timestamp's certificate
    expires later), and the row moves only from the sha256 the renewal started from.
    Raises ``LogIntegrityError`` when the stored file does not match the row's sha256.
    """
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from audit import exports

    now = now or timezone.now()
    job = ExportJob.objects.get(pk=job_id)
    if (job.kind != ExportJob.Kind.PDF or job.status != ExportJob.Status.DONE
            or not job.file_name):
        return "skipped"
    with default_storage.open(job.file_name, "rb") as handle:
        pdf = handle.read()
    old_sha256 = sha256_hex(pdf)
    if old_sha256 != job.sha256:
        raise LogIntegrityError(f"export {job_id}: stored file does not match its sha256")
    state = exports.archival_state(pdf)
    # Reports made before the level was recorded get it on their first run.
    ExportJob.objects.filter(pk=job_id, sha256=old_sha256).exclude(
        pades_level=state.level, archival_expires_at=state.expires_at).update(
        pades_level=state.level, archival_expires_at=state.expires_at)
    if state.level != "B-LTA" or state.expires_at is None:
        return "not_lta"
    if state.expires_at - now > dt.timedelta(days=settings.AUDIT_PDF_RENEW_BEFORE_DAYS):
        return "not_due"
    renewed = exports.renew_archival(pdf, identity=keys.pdf_identity())
    if renewed is None:
        logger.warning(
            "archival timestamp due but the TSA certificate was not renewed",
            extra={"export": job_id, "expires_at": state.expires_at.isoformat()})
        return "tsa_not_rotated"
    new_state = exports.archival_state(renewed)
    new_sha256 = sha256_hex(renewed)
    stored = default_storage.save(f"audit/exports/{job_id}-report-{new_sha256[:16]}.pdf",
                                  ContentFile(renewed))
    with transaction.atomic():
        moved = ExportJob.objects.filter(pk=job_id, sha256=old_sha256).update(
            file_name=stored, sha256=new_sha256, pades_level=new_state.level,
            archival_expires_at=new_state.expires_at)
        if moved:
            assert new_state.timestamp_at is not None and new_state.expires_at is not None
            audit_append(
                action="audit.export.renewed", actor="system", object_type="audit.ExportJob",
                object_id=job_id,
                payload={"old_sha256": old_sha256, "sha256": new_sha256,
                         "timestamp": new_state.timestamp_at.isoformat(),
                         "document_timestamps": new_state.document_timestamps,
                         "tsa_certificate_expires_at": new_state.expires_at.isoformat(),
                         "bytes_added": len(renewed) - len(pdf)})
    if not moved:  # renewed meanwhile by another run: keep its file, drop ours
        default_storage.delete(stored)
        return "skipped"
    return "renewed"


def export_renew_archival_due(*, now: dt.datetime | None = None,
                              deadline: float | None = None) -> dict[str, int]:
    """Run :func:`export_renew_archival` over the workspace's due reports; count outcomes.

    Due: finished PDF reports whose level is not yet recorded (read once), and B-LTA
    reports whose latest timestamp's TSA certificate expires within
    ``AUDIT_PDF_RENEW_BEFORE_DAYS``, soonest first. A failing report is logged and
    counted (``failed``) without stopping the others; three failures in a row (the TSA
    unreachable, most likely) or ``deadline`` (``time.monotonic()``) end the run: what is
    left is due again on the next.
    """
    import time

    from django.conf import settings
    from django.db.models import Q

    now = now or timezone.now()
    cutoff = now + dt.timedelta(days=settings.AUDIT_PDF_RENEW_BEFORE_DAYS)
    due = (ExportJob.objects.filter(kind=ExportJob.Kind.PDF, status=ExportJob.Status.DONE)
           .exclude(file_name="")
           .filter(Q(pades_level="") | Q(pades_level="B-LTA", archival_expires_at__lte=cutoff))
           .order_by("archival_expires_at", "pk").values_list("pk", flat=True))
    counts: dict[str, int] = {}
    failures = 0
    for job_id in list(due):
        if deadline is not None and time.monotonic() > deadline:
            counts["deferred"] = counts.get("deferred", 0) + 1
            continue
        try:
            outcome = export_renew_archival(job_id=job_id, now=now)
            failures = 0
        except Exception:
            logger.exception("archival renewal failed", extra={"export": job_id})
            outcome, failures = "failed", failures + 1
        counts[outcome] = counts.get(outcome, 0) + 1
        if failures >= 3:
            break
    return counts
