"""Writes of the inspections app: resumable uploads, scans, processing, the outbox.

Every service is one transaction (or, for the streaming append, a short transaction
per durable step); tasks and WebSocket events are sent on commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.services import usage_record
from d2r.realtime import Event, publish
from inspections import acknowledgements, objectstore, signals
from inspections.models import Asset, OutboxMessage, Scan, Upload

logger = logging.getLogger(__name__)
READ_BYTES = 1024 * 1024
UPLOAD_LEASE_SECONDS = 300
MAX_PROCESSING_ATTEMPTS = 3
CHECKSUM_ALGORITHMS = ("sha256", "sha1")
S3_MIN_PART = 5 * 1024 * 1024  # S3 (and SeaweedFS) refuse smaller parts but the last


class UploadProblem(Exception):
    """A refused upload operation: `slug` names the problem (d2r.api.problems)."""

    def __init__(self, slug: str, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class UploadSpec:
    """What a device declares when it opens an upload (tus `Upload-Metadata`)."""

    asset_id: int
    size: int
    sha256: str
    encoding: str
    cad_revision: str = ""
    captured_at: datetime | None = None
    device: str = ""
    firmware: str = ""
    calibration: dict[str, Any] | None = None
    edge_transform: list[float] | None = None
    operator: str = ""
    filename: str = ""


# upload id -> (offset, sha256 of bytes [0, offset)). hashlib cannot be serialised, so the
# running hash lives in the process that received the bytes; an upload resumed in
# another process is hashed again from object storage once, at completion.
_HASHERS: dict[uuid.UUID, tuple[int, Any]] = {}
_HASHERS_MAX = 256


def _remember_hasher(upload_id: uuid.UUID, offset: int, hasher: Any) -> None:
    if len(_HASHERS) >= _HASHERS_MAX and upload_id not in _HASHERS:
        _HASHERS.pop(next(iter(_HASHERS)))
    _HASHERS[upload_id] = (offset, hasher)


def _event(kind: str, data: dict[str, Any]) -> None:
    """Publish to the workspace's subscribers once the current transaction commits."""
    schema = connection.schema_name
    event: Event = {"kind": kind, "data": data}

    def send() -> None:
        try:
            publish(schema, "events", event)
        except Exception:  # a real-time hiccup must never fail an ingest
            logger.warning("event not published", extra={"kind": kind}, exc_info=True)

    transaction.on_commit(send)


def _upload_event(upload: Upload) -> None:
    _event("upload.status", {"upload_id": str(upload.id), "status": upload.status,
                             "offset": upload.offset, "size": upload.declared_size,
                             "scan_id": str(upload.scan_id) if upload.scan_id else None})


def _scan_event(scan: Scan) -> None:
    _event("scan.status", {"scan_id": str(scan.id), "status": scan.status,
                           "reason": scan.rejection_reason or None})


# --- Uploads -------------------------------------------------------------------------


def upload_create(*, spec: UploadSpec, user: Any, idempotency_key: str | None = None
                  ) -> tuple[Upload, bool]:
    """Open a resumable upload; returns (upload, created).

    Idempotent by `idempotency_key`: the same key with the same declaration returns the
    existing upload; with a different one it is refused (`idempotency-key-reused`).
    """
    if idempotency_key:
        existing = Upload.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _same_declaration(existing, spec), False
    if spec.size <= 0:
        raise UploadProblem("size-mismatch", "Upload-Length must be at least 1 byte.")
    if spec.size > settings.INGEST_MAX_UPLOAD_BYTES:
        raise UploadProblem("size-mismatch", f"Upload-Length exceeds the maximum of "
                            f"{settings.INGEST_MAX_UPLOAD_BYTES} bytes.", status=413)
    if not Asset.objects.filter(pk=spec.asset_id).exists():
        raise UploadProblem("validation-error", f"No asset {spec.asset_id} in this workspace.")
    upload_id = uuid.uuid4()
    key = objectstore.key_for(f"scans/raw/{upload_id}")
    multipart_id = objectstore.multipart_start(key)
    upload = Upload(
        id=upload_id, asset_id=spec.asset_id, cad_revision=spec.cad_revision,
        captured_at=spec.captured_at, device=spec.device, firmware=spec.firmware,
        calibration=spec.calibration or {}, edge_transform=spec.edge_transform,
        operator=spec.operator, filename=spec.filename, encoding=spec.encoding,
        declared_size=spec.size, declared_sha256=spec.sha256.lower(),
        idempotency_key=idempotency_key or None,
        created_by=user if getattr(user, "pk", None) else None,  # people only, not keys
        object_key=key, multipart_id=multipart_id,
        expires_at=timezone.now() + timedelta(seconds=settings.INGEST_UPLOAD_TTL_SECONDS),
    )
    try:
        with transaction.atomic():
            upload.save(force_insert=True)
            _upload_event(upload)
    except IntegrityError:
        objectstore.multipart_abort(key, multipart_id)
        existing = Upload.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return _same_declaration(existing, spec), False
    _remember_hasher(upload.id, 0, hashlib.sha256())
    return upload, True


def _same_declaration(upload: Upload, spec: UploadSpec) -> Upload:
    if (upload.declared_size, upload.declared_sha256, upload.asset_id) != (
        spec.size, spec.sha256.lower(), spec.asset_id
    ):
        raise UploadProblem("idempotency-key-reused",
                            "This Idempotency-Key was used for a different upload.")
    return upload


def _claim(upload_id: uuid.UUID, offset: int) -> uuid.UUID:
    """Lease the upload for one PATCH (claim by conditional UPDATE), or say why not."""
    now = timezone.now()
    token = uuid.uuid4()
    claimed = Upload.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
        pk=upload_id, status=Upload.Status.UPLOADING, offset=offset, expires_at__gt=now,
    ).update(lease_token=token, lease_until=now + timedelta(seconds=UPLOAD_LEASE_SECONDS))
    if claimed:
        return token
    upload = Upload.objects.filter(pk=upload_id).first()
    if upload is None:
        raise UploadProblem("not-found", "No such upload in this workspace.")
    _refuse_unless_open(upload, now)
    if upload.offset != offset:
        raise UploadProblem("offset-conflict",
                            f"Upload-Offset {offset} does not match the upload's offset "
                            f"{upload.offset}; HEAD the upload and resume from there.")
    raise UploadProblem("upload-locked", "Another request is appending to this upload.")


def _refuse_unless_open(upload: Upload, now: datetime) -> None:
    if upload.status == Upload.Status.UPLOADING and upload.expires_at <= now:
        raise UploadProblem("upload-expired", "The upload expired; start a new one.")
    if upload.status == Upload.Status.EXPIRED:
        raise UploadProblem("upload-expired", "The upload expired; start a new one.")
    if upload.status in (Upload.Status.TERMINATED, Upload.Status.FAILED):
        reason = f" ({upload.failure_reason})" if upload.failure_reason else ""
        raise UploadProblem("upload-gone", f"The upload was {upload.status}{reason}.")
    if upload.status == Upload.Status.COMPLETED:
        raise UploadProblem("offset-conflict", "The upload is already complete.")


def upload_append(*, upload_id: uuid.UUID, offset: int, stream: BinaryIO, length: int,
                  checksum: tuple[str, bytes] | None = None) -> Upload:
    """Append `length` bytes read from `stream` at `offset` (one tus PATCH).

    The bytes go to S3 one part at a time (the process holds at most one part), and the
    committed offset advances after each durable step. If the client disconnects, what
    arrived is staged as a tail object, so the client resumes from there. With a
    `checksum` (algorithm, digest) nothing of this request is committed unless the
    digest matches. The upload is leased for the request (conditional UPDATE), so two
    concurrent PATCHes cannot interleave.
    """
    token = _claim(upload_id, offset)
    try:
        return _append(upload_id, token, stream, length, checksum)
    finally:
        Upload.objects.filter(pk=upload_id, lease_token=token).update(
            lease_token=None, lease_until=None)


def _append(upload_id: uuid.UUID, token: uuid.UUID, stream: BinaryIO, length: int,
            checksum: tuple[str, bytes] | None) -> Upload:
    upload = Upload.objects.get(pk=upload_id)
    base = upload.offset
    if base + length > upload.declared_size:
        raise UploadProblem("size-mismatch",
                            f"{length} bytes at offset {base} would exceed the declared "
                            f"Upload-Length of {upload.declared_size}.", status=413)
    part_size = max(settings.INGEST_PART_SIZE, S3_MIN_PART)
    cached = _HASHERS.pop(upload_id, None)
    hasher = cached[1].copy() if cached and cached[0] == base else None
    chunk_hasher: Any = hashlib.new(checksum[0]) if checksum else None
    # One preallocated part buffer per request: no growth, no fragmentation.
    buffer = bytearray(part_size)
    view = memoryview(buffer)
    filled = 0
    if upload.tail_key:
        tail = objectstore.get(upload.tail_key)
        view[: len(tail)] = tail
        filled = len(tail)
        del tail
    old_tail = upload.tail_key
    parts = list(upload.parts)
    received = 0
    disconnected = False
    last_event = time.monotonic()
    # A streamed ASGI body (d2r.streaming) copies straight into the part buffer.
    readinto = getattr(stream, "readinto", None)
    while received < length:
        want = min(READ_BYTES, length - received, part_size - filled)
        data: Any
        try:
            if readinto is not None:
                data = view[filled : filled + readinto(view[filled : filled + want])]
            else:
                data = stream.read(want)
                view[filled : filled + len(data)] = data
        except OSError:  # client gone (d2r.streaming.ClientDisconnected, WSGI errors)
            data = b""
        if not data:
            disconnected = True
            break
        filled += len(data)
        received += len(data)
        if hasher is not None:
            hasher.update(data)
        if chunk_hasher is not None:
            chunk_hasher.update(data)
        del data
        if filled == part_size:
            parts.append(objectstore.multipart_put(upload.object_key, upload.multipart_id,
                                                   len(parts) + 1, buffer))
            filled = 0
            if checksum is None:  # durable now: commit the progress
                with transaction.atomic():
                    Upload.objects.filter(pk=upload_id, lease_token=token).update(
                        offset=base + received, parts=parts, tail_key="", tail_size=0,
                        lease_until=timezone.now() + timedelta(seconds=UPLOAD_LEASE_SECONDS))
                    if time.monotonic() - last_event > 1.0:
                        last_event = time.monotonic()
                        _event("upload.progress", {"upload_id": str(upload_id),
                                                   "offset": base + received,
                                                   "size": upload.declared_size})
    if checksum is not None and (disconnected or chunk_hasher.digest() != checksum[1]):
        if cached is not None:  # the running hash is still good up to `base`
            _remember_hasher(upload_id, *cached)
        if disconnected:
            raise UploadProblem("checksum-mismatch", "The request body ended early; with "
                                "Upload-Checksum nothing of it was kept.")
        raise UploadProblem("checksum-mismatch",
                            f"The {checksum[0]} of the request body does not match "
                            "Upload-Checksum; nothing of it was kept.", status=460)
    new_offset = base + received
    # The buffer is done with: truncate it in place rather than copy its first `filled`
    # bytes (a copy would hold a second part in memory).
    view.release()
    del buffer[filled:]
    if new_offset == upload.declared_size:
        if filled:
            parts.append(objectstore.multipart_put(upload.object_key, upload.multipart_id,
                                                   len(parts) + 1, buffer))
        Upload.objects.filter(pk=upload_id, lease_token=token).update(
            offset=new_offset, parts=parts, tail_key="", tail_size=0)
        upload.refresh_from_db()
        return _upload_finish(upload, hasher)
    tail_key = ""
    if filled:
        tail_key = objectstore.key_for(f"scans/staging/{upload_id}/tail-{new_offset}")
        objectstore.put(tail_key, buffer)
    with transaction.atomic():
        Upload.objects.filter(pk=upload_id, lease_token=token).update(
            offset=new_offset, parts=parts, tail_key=tail_key, tail_size=filled)
        upload.refresh_from_db()
        _upload_event(upload)
    if hasher is not None:
        _remember_hasher(upload_id, new_offset, hasher)
    if old_tail and old_tail != tail_key:
        with contextlib.suppress(Exception):
            objectstore.delete(old_tail)
    return upload


def _upload_finish(upload: Upload, hasher: Any) -> Upload:
    """All bytes are in: assemble the object, verify size and hash, record the scan."""
    try:
        objectstore.multipart_complete(upload.object_key, upload.multipart_id, upload.parts)
    except Exception:  # completed by an earlier attempt whose response was lost?
        if objectstore.size(upload.object_key) != upload.declared_size:
            raise
    actual_size = objectstore.size(upload.object_key)
    if hasher is None:  # resumed in another process: hash the stored object once
        hasher = hashlib.sha256()
        for chunk in objectstore.iter_chunks(upload.object_key, READ_BYTES):
            hasher.update(chunk)
    digest = hasher.hexdigest()
    if actual_size != upload.declared_size:
        _upload_fail(upload, "size-mismatch",
                     f"Stored {actual_size} bytes; {upload.declared_size} were declared.")
    if digest != upload.declared_sha256:
        _upload_fail(upload, "checksum-mismatch",
                     f"The file's SHA-256 is {digest}; {upload.declared_sha256} was declared.")
    return scan_receive(upload_id=upload.id, sha256=digest)


def _upload_fail(upload: Upload, slug: str, detail: str) -> None:
    with transaction.atomic():
        Upload.objects.filter(pk=upload.id).update(
            status=Upload.Status.FAILED, failure_reason=slug, failure_detail=detail)
        upload.status = Upload.Status.FAILED
        _upload_event(upload)
    key = upload.object_key
    transaction.on_commit(lambda: _quietly(objectstore.delete, key))
    raise UploadProblem(slug, detail + " The upload is closed; start a new one.")


def _quietly(function: Any, *args: Any) -> None:
    try:
        function(*args)
    except Exception:  # cleanup is best effort; the expiry sweep retries
        logger.warning("object cleanup failed", exc_info=True)


def upload_terminate(*, upload_id: uuid.UUID) -> None:
    """tus termination: close the upload and free its stored bytes (idempotent)."""
    with transaction.atomic():
        upload = Upload.objects.select_for_update().filter(pk=upload_id).first()
        if upload is None:
            raise UploadProblem("not-found", "No such upload in this workspace.")
        if upload.status == Upload.Status.COMPLETED:
            raise UploadProblem("conflict", "A completed upload cannot be terminated.")
        if upload.status != Upload.Status.UPLOADING:
            return
        upload.status = Upload.Status.TERMINATED
        upload.save(update_fields=["status", "updated_at"])
        _upload_event(upload)
        transaction.on_commit(lambda: _release_objects(upload))


def _release_objects(upload: Upload) -> None:
    if upload.multipart_id:
        _quietly(objectstore.multipart_abort, upload.object_key, upload.multipart_id)
    if upload.tail_key:
        _quietly(objectstore.delete, upload.tail_key)


def uploads_expire(*, now: datetime | None = None) -> int:
    """Close uploads past `expires_at` and free their parts; returns how many."""
    now = now or timezone.now()
    count = 0
    for upload in Upload.objects.filter(status=Upload.Status.UPLOADING, expires_at__lte=now,
                                        ).filter(Q(lease_until__isnull=True)
                                                 | Q(lease_until__lt=now))[:500]:
        with transaction.atomic():
            if Upload.objects.filter(pk=upload.pk, status=Upload.Status.UPLOADING).update(
                    status=Upload.Status.EXPIRED):
                upload.status = Upload.Status.EXPIRED
                _upload_event(upload)
                transaction.on_commit(lambda u=upload: _release_objects(u))  # type: ignore[misc]
                count += 1
    return count


# --- Scans ---------------------------------------------------------------------------


def scan_receive(*, upload_id: uuid.UUID, sha256: str) -> Upload:
    """Record the verified file as a Scan (or find the one it duplicates), sign the
    acknowledgement and enqueue processing — all in one transaction (outbox).

    Idempotent: an upload already completed is returned unchanged. A duplicate (same
    SHA-256 in this workspace) links the upload to the existing scan and deletes the copy.
    """
    with transaction.atomic():
        upload = Upload.objects.select_for_update().get(pk=upload_id)
        if upload.status == Upload.Status.COMPLETED:
            return upload
        now = timezone.now()
        scan = Scan.objects.filter(sha256=sha256).first()
        created = False
        if scan is None:
            try:
                with transaction.atomic():
                    scan = Scan.objects.create(
                        asset_id=upload.asset_id, sha256=sha256, size_bytes=upload.declared_size,
                        encoding=upload.encoding, raw_key=upload.object_key,
                        cad_revision=upload.cad_revision, captured_at=upload.captured_at,
                        device=upload.device, firmware=upload.firmware,
                        calibration=upload.calibration, edge_transform=upload.edge_transform,
                        operator=upload.operator, received_at=now,
                    )
                    created = True
            except IntegrityError:  # the same file completed concurrently
                scan = Scan.objects.get(sha256=sha256)
        upload.status = Upload.Status.COMPLETED
        upload.scan = scan
        upload.deduplicated = not created
        upload.acknowledgement = dict(acknowledgements.sign({
            "scan_id": str(scan.id), "upload_id": str(upload.id),
            "workspace": connection.schema_name, "sha256": sha256,
            "size_bytes": scan.size_bytes, "received_at": scan.received_at.isoformat(),
            "deduplicated": not created,
        }))
        upload.save()
        _upload_event(upload)
        if created:
            # Metered in the same transaction: a scan is billed once, however often sent.
            usage_record(meter="scan_bytes", quantity=scan.size_bytes, occurred_at=now,
                         idempotency_key=f"scan-bytes:{scan.id}")
            message = OutboxMessage.objects.create(topic=OutboxMessage.Topic.SCAN_PROCESS,
                                                   scan=scan)
            ids = [message.pk]
            transaction.on_commit(lambda: outbox_dispatch(message_ids=ids))
            _scan_event(scan)
        else:
            key = upload.object_key
            transaction.on_commit(lambda: _quietly(objectstore.delete, key))
    _HASHERS.pop(upload_id, None)
    return upload


def outbox_dispatch(*, message_ids: list[int]) -> int:
    """Send the outbox rows' tasks to the broker and stamp them; returns how many went.

    A broker failure leaves the row unstamped for the sweep. Sending twice is harmless:
    the task claims its scan by a conditional UPDATE.
    """
    from inspections.tasks import scan_process_task

    sent = 0
    for message in OutboxMessage.objects.filter(pk__in=message_ids, done_at__isnull=True):
        try:
            scan_process_task.delay(str(message.scan_id))
        except Exception as exc:  # noqa: BLE001 - broker down: the sweep retries
            logger.warning("outbox dispatch failed; the sweep will retry: %s", exc)
            continue
        OutboxMessage.objects.filter(pk=message.pk).update(
            dispatched_at=timezone.now(), dispatch_count=F("dispatch_count") + 1)
        sent += 1
    return sent


def outbox_redispatch_stale(*, now: datetime | None = None) -> int:
    """Re-send outbox rows whose work neither started nor finished in time.

    Stale: not done, last sent (or never sent) before the stale interval, and its scan
    is still waiting (`received`) or held by a lease that expired (a dead worker).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.INGEST_OUTBOX_STALE_SECONDS)
    stale = OutboxMessage.objects.filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=cutoff), done_at__isnull=True,
    ).filter(Q(scan__status=Scan.Status.RECEIVED)
             | Q(scan__status=Scan.Status.PROCESSING, scan__lease_until__lt=now))
    ids = list(stale.values_list("pk", flat=True)[:1000])
    return outbox_dispatch(message_ids=ids) if ids else 0


def scan_claim(*, scan_id: uuid.UUID) -> uuid.UUID | None:
    """Take the processing lease (conditional UPDATE); None if done or held by another."""
    now = timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        claimed = Scan.objects.filter(
            Q(status=Scan.Status.RECEIVED)
            | Q(status=Scan.Status.PROCESSING, lease_until__lt=now), pk=scan_id,
        ).update(status=Scan.Status.PROCESSING, lease_token=token, attempts=F("attempts") + 1,
                 lease_until=now + timedelta(seconds=settings.INGEST_PROCESSING_LEASE_SECONDS))
        if not claimed:
            return None
        _scan_event(Scan.objects.get(pk=scan_id))
    return token


def scan_process(*, scan_id: uuid.UUID) -> str:
    """Validate the scan in one streaming pass, write its canonical Parquet, finish it.

    Idempotent: processing starts only with the lease (`scan_claim`); the canonical
    object's key is fixed per scan (a rerun overwrites it); finishing needs the same
    lease token, so a worker that lost its lease cannot finish the scan a second time.
    Returns the scan's final status, or `skipped`.
    """
    # Imported here: the web process never loads numpy/laspy (its RSS budget).
    from inspections.pointcloud.canonical import CanonicalError, CanonicalWriter
    from inspections.pointcloud.validate import Limits, Rejected, validate

    token = scan_claim(scan_id=scan_id)
    if token is None:
        return "skipped"
    scan = Scan.objects.get(pk=scan_id)
    if scan.attempts > MAX_PROCESSING_ATTEMPTS:
        # Every earlier attempt died without a Python error (the worker was killed, or a
        # native library crashed it): a scan that kills its worker is not retried forever.
        logger.error("scan processing never finished", extra={"scan": str(scan_id)})
        return _scan_finish(scan_id, token, status=Scan.Status.REJECTED,
                            rejection_reason="processing-failed",
                            rejection_detail=f"Processing stopped {scan.attempts - 1} times "
                                             "without finishing (the worker died); not retried.")
    limits = Limits(max_points=settings.INGEST_MAX_POINTS,
                    max_decompressed_bytes=settings.INGEST_MAX_DECOMPRESSED_BYTES,
                    max_ratio=settings.INGEST_MAX_DECOMPRESSION_RATIO)
    canonical_key = objectstore.key_for(f"scans/canonical/{scan.id}.parquet")
    scratch = tempfile.NamedTemporaryFile(prefix="d2r-canonical-", suffix=".parquet",
                                          delete=False)
    try:
        writer = CanonicalWriter(scratch)
        try:
            report = validate(
                lambda: io.BufferedReader(objectstore.RangeReader(scan.raw_key),
                                          buffer_size=8 * 1024 * 1024),
                size=scan.size_bytes, encoding=scan.encoding, limits=limits,
                on_points=writer.on_points, on_xyz=writer.on_xyz)
            writer.close()
            scratch.close()
            objectstore.upload_file(canonical_key, scratch.name)
        except Rejected as rejected:
            return _scan_finish(scan_id, token, status=Scan.Status.REJECTED,
                                rejection_reason=rejected.reason,
                                rejection_detail=rejected.detail)
        except CanonicalError as error:
            return _scan_finish(scan_id, token, status=Scan.Status.REJECTED,
                                rejection_reason="out-of-range", rejection_detail=str(error))
        except Exception:
            scan.refresh_from_db()
            if scan.attempts >= MAX_PROCESSING_ATTEMPTS:
                logger.exception("scan processing failed for good", extra={"scan": str(scan_id)})
                return _scan_finish(scan_id, token, status=Scan.Status.REJECTED,
                                    rejection_reason="processing-failed",
                                    rejection_detail=f"Processing failed {scan.attempts} times;"
                                                     " the error is logged.")
            # Back to `received`: the outbox sweep sends it again after the stale interval.
            Scan.objects.filter(pk=scan_id, lease_token=token).update(
                status=Scan.Status.RECEIVED, lease_token=None, lease_until=None)
            raise
        return _scan_finish(scan_id, token, status=Scan.Status.PROCESSED,
                            point_count=report.point_count,
                            bounds={"min": report.mins, "max": report.maxs},
                            canonical_key=canonical_key)
    finally:
        scratch.close()
        with contextlib.suppress(OSError):
            os.unlink(scratch.name)


def _scan_finish(scan_id: uuid.UUID, token: uuid.UUID, *, status: str, **fields: Any) -> str:
    with transaction.atomic():
        finished = Scan.objects.filter(pk=scan_id, lease_token=token,
                                       status=Scan.Status.PROCESSING).update(
            status=status, lease_token=None, lease_until=None, processed_at=timezone.now(),
            **fields)
        if not finished:
            logger.warning("lease lost; result discarded", extra={"scan": str(scan_id)})
            return "skipped"
        OutboxMessage.objects.filter(scan_id=scan_id, done_at__isnull=True).update(
            done_at=timezone.now())
        _scan_event(Scan.objects.get(pk=scan_id))
        if status == Scan.Status.PROCESSED:
            usage_record(meter="scans_processed", quantity=1, occurred_at=timezone.now(),
                         idempotency_key=f"scan-processed:{scan_id}")
            transaction.on_commit(
                lambda: signals.scan_processed.send(sender=Scan, scan_id=scan_id))
    return status
