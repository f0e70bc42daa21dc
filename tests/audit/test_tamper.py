"""Tampering with a committed log, as a database superuser would; the verifier names it.

Each test gets its own workspace ``tamper`` (committed, then dropped): the owner
login cannot run inside the test transaction. The superuser bypasses the append-only
trigger with ``session_replication_role = replica``, which is exactly the deliberate
act the log must make evident.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db import ProgrammingError, connection
from django_tenants.utils import schema_context

from audit import selectors, services, verify
from audit.ledger.checkpoint import Checkpoint, SignerKey, sign_checkpoint
from audit.ledger.entry import EntryFields, canonical_json, sha256_hex
from audit.models import Entry, LogKey, MerkleNode
from d2r.db.privileged import privileged
from tenants import dbroles
from tenants import services as tenant_services
from tenants.models import Domain, Tenant
from tests.audit.factories import receipt_data

SCHEMA = "tamper"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Log:
    vkey: str


def _drop() -> None:
    with privileged():
        Domain.objects.filter(tenant__schema_name=SCHEMA).delete()
        Tenant.objects.filter(schema_name=SCHEMA).delete()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        dbroles.tenant_role_drop(SCHEMA)


def _append(i: int) -> Entry:
    return services.audit_append(action="qc.decision", actor="user:qc@tamper.test",
                                 object_type="inspections.QcResult", object_id=i,
                                 payload={"decision": "accept", "n": i})


@pytest.fixture(scope="module")
def tamper_schema(django_db_setup: None, django_db_blocker: object) -> Iterator[None]:
    """The workspace, created once for the module (committed), dropped at the end."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        _drop()
        with privileged():
            tenant_services.tenant_create(slug=SCHEMA, name="Tamper", domain="tamper.localhost",
                                          admin_email="owner@tamper.test")
        try:
            yield
        finally:
            connection.set_schema_to_public()
            _drop()


@pytest.fixture
def log(tamper_schema: None, django_db_blocker: object) -> Iterator[Log]:
    """A fresh committed log: entries 0-3, head 4; entries 4-5 and a receipt (6), head 7."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        _superuser(f"TRUNCATE {SCHEMA}.audit_receipt, {SCHEMA}.audit_entry, "
                   f"{SCHEMA}.audit_treehead, {SCHEMA}.audit_exportjob, {SCHEMA}.audit_merklenode")
        with schema_context(SCHEMA):
            for i in range(4):
                _append(i)
            services.tree_head_issue()
            _append(4)
            _append(5)
            services.receipt_create(data=receipt_data(), actor="system:processing")
            services.tree_head_issue()
            vkey = LogKey.objects.get(kind="note").public
        try:
            yield Log(vkey=vkey)
        finally:
            connection.set_schema_to_public()


def _superuser(*statements: str, params: list[object] | None = None) -> None:
    with privileged(), connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # triggers off: superuser only
        for statement in statements:
            cursor.execute(statement, params)
        cursor.execute("RESET session_replication_role")


def _export(kind: str = "json") -> bytes:
    with schema_context(SCHEMA):
        job = services.export_request(kind=kind, requested_by="user:auditor@tamper.test")
        job = services.export_run(job_id=job.pk)
        with default_storage.open(job.file_name, "rb") as handle:
            return handle.read()


def _broken(token: bytes, vkey: str) -> verify.VerificationError:
    with pytest.raises(verify.VerificationError) as failure:
        verify.verify_token(token, pinned_keys=[vkey])
    return failure.value


def test_untampered_log_verifies_and_the_trigger_refuses_even_the_owner(log: Log) -> None:
    verify.verify_token(_export(), pinned_keys=[log.vkey])
    with privileged(), connection.cursor() as cursor:
        for statement in (f"UPDATE {SCHEMA}.audit_entry SET actor = 'x'",
                          f"DELETE FROM {SCHEMA}.audit_entry WHERE seq = 1",
                          f"TRUNCATE {SCHEMA}.audit_treehead"):
            with pytest.raises(ProgrammingError, match="append-only"):
                cursor.execute(statement)


def test_row_changed_in_sql_by_a_superuser(log: Log, tmp_path: Path) -> None:
    _superuser(f"UPDATE {SCHEMA}.audit_entry SET payload = %s WHERE seq = 2",
               params=[canonical_json({"decision": "reject", "n": 2})])
    token = _export()
    error = _broken(token, log.vkey)
    assert (error.where, error.why) == ("entry 2", "payload does not match its payload_sha256")
    (tmp_path / "bundle.jws").write_bytes(token)
    result = subprocess.run([sys.executable, "-m", "audit.verify", str(tmp_path / "bundle.jws"),
                             "--key", log.vkey], capture_output=True, text=True, cwd=ROOT,
                            check=False)
    assert result.returncode == 1
    assert result.stdout.strip() == (
        "FAILED entry 2: payload does not match its payload_sha256")


def test_hashed_field_changed_in_sql(log: Log) -> None:
    _superuser(f"UPDATE {SCHEMA}.audit_entry SET actor = 'user:mallory' WHERE seq = 1")
    error = _broken(_export(), log.vkey)
    assert error.where == "entry 1" and "entry_hash" in error.why


def test_row_deleted(log: Log) -> None:
    _superuser(f"DELETE FROM {SCHEMA}.audit_entry WHERE seq = 3")
    error = _broken(_export(), log.vkey)
    assert (error.where, error.why) == (
        "entry 3", "missing: found sequence number 4 at position 3")


def test_two_rows_swapped(log: Log) -> None:
    _superuser(f"UPDATE {SCHEMA}.audit_entry SET seq = 100 WHERE seq = 2",
               f"UPDATE {SCHEMA}.audit_entry SET seq = 2 WHERE seq = 3",
               f"UPDATE {SCHEMA}.audit_entry SET seq = 3 WHERE seq = 100")
    error = _broken(_export(), log.vkey)
    assert error.where == "entry 2" and "does not chain to entry 1" in error.why


def _rewrite_from(seq: int, inserted: dict[str, str]) -> None:
    """Insert an entry at ``seq`` and recompute every later hash, as a careful forger would."""
    with schema_context(SCHEMA):
        rows = list(Entry.objects.filter(seq__gte=seq).order_by("seq").values())
        prev = Entry.objects.get(seq=seq - 1).entry_hash
        time = rows[0]["time"]
    statements, params = [f"DELETE FROM {SCHEMA}.audit_receipt",
                          f"DELETE FROM {SCHEMA}.audit_entry WHERE seq >= {seq}"], []
    forged = [{"seq": seq, "time": time, "actor": "user:mallory", "action": "qc.decision",
               "object_type": "inspections.QcResult", "object_id": "99", **inserted}]
    for row in rows:
        forged.append({**row, "seq": row["seq"] + 1})
    for row in forged:
        payload = row.get("payload") or canonical_json({"decision": "accept", "n": 99})
        fields = EntryFields(seq=row["seq"], time=services.entry_time_text(row["time"]),
                             actor=row["actor"], action=row["action"],
                             object_type=row["object_type"], object_id=row["object_id"],
                             payload_sha256=sha256_hex(payload), prev_hash=prev)
        prev = fields.entry_hash()
        statements.append(
            f"INSERT INTO {SCHEMA}.audit_entry (seq, time, actor, action, object_type, "
            "object_id, payload, payload_sha256, prev_hash, entry_hash, leaf_hash) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
        params.append([fields.seq, row["time"], fields.actor, fields.action, fields.object_type,
                       fields.object_id, payload, fields.payload_sha256, fields.prev_hash,
                       prev, fields.leaf_hash().hex()])
    with privileged(), connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(statements[0])
        cursor.execute(statements[1])
        for statement, values in zip(statements[2:], params, strict=True):
            cursor.execute(statement, values)
        cursor.execute("RESET session_replication_role")


def test_entry_inserted_in_the_middle_with_the_chain_recomputed(log: Log) -> None:
    _rewrite_from(5, {})
    token = _export()
    error = _broken(token, log.vkey)
    # The chain is consistent again; the signed tree head of size 7 is not fooled,
    # and the one of size 4 still holds, which bounds where the change is.
    assert error.where == "tree head 1 (size 7)"
    assert "an entry between 4 and 6 was changed, removed or inserted" in error.why
    with schema_context(SCHEMA):  # and the server refuses to sign the altered log
        with pytest.raises(services.LogIntegrityError):
            services.tree_head_issue()
        assert not selectors.log_verify().ok


def test_forged_tree_head(log: Log) -> None:
    with schema_context(SCHEMA):
        head = selectors.tree_head_latest()
        assert head is not None
        forged_root = b"\x42" * 32
        # Same key name (origin), attacker's own key: not the pinned key.
        attacker = SignerKey.generate(head.note.splitlines()[0])
        note = sign_checkpoint(Checkpoint(origin=attacker.name, size=head.size,
                                          root_hash=forged_root), attacker)
    _superuser(f"INSERT INTO {SCHEMA}.audit_treehead (size, root_hash, note, key_id, created_at)"
               " VALUES (%s, %s, %s, %s, now())",
               params=[head.size, forged_root.hex(), note, f"{attacker.key_id:08x}"])
    error = _broken(_export(), log.vkey)
    assert error.where == "tree head 2 (size 7)"
    assert "checkpoint rejected" in error.why and "trusted" in error.why


def test_tree_head_note_edited(log: Log) -> None:
    with schema_context(SCHEMA):
        head = selectors.tree_head_latest()
        assert head is not None
    lines = head.note.split("\n")
    lines[2] = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="  # another root, old signature
    _superuser(f"UPDATE {SCHEMA}.audit_treehead SET note = %s WHERE id = %s",
               params=["\n".join(lines), head.pk])
    error = _broken(_export(), log.vkey)
    assert error.where == "tree head 1 (size 7)" and "signature" in error.why


def test_bundle_edited_by_one_byte(log: Log) -> None:
    token = _export()
    verify.verify_token(token, pinned_keys=[log.vkey])
    header, payload, signature = token.split(b".")
    position = len(payload) // 2
    flipped = b"A" if payload[position:position + 1] != b"A" else b"B"
    edited = b".".join([header, payload[:position] + flipped + payload[position + 1:],
                        signature])
    error = _broken(edited, log.vkey)
    assert error.where == "bundle"
    assert "signature does not verify" in error.why or "unreadable" in error.why
    # Re-serialised with a changed entry but the old signature: refused the same way.
    bundle = json.loads(verify._b64url(payload.decode(), "payload"))
    bundle["entries"][1]["actor"] = "user:mallory"
    import base64

    forged = base64.urlsafe_b64encode(canonical_json(bundle).encode()).rstrip(b"=")
    error = _broken(b".".join([header, forged, signature]), log.vkey)
    assert (error.where, error.why) == ("bundle",
                                        "JWS signature does not verify (bundle altered)")


def test_pdf_edited_after_signing(log: Log) -> None:
    pdf = _export("pdf")
    verify.verify_pdf(pdf, pinned_keys=[log.vkey])
    # One byte of the signed content changed.
    position = pdf.index(b"/Producer")
    edited = pdf[:position] + b"/Pr0ducer" + pdf[position + len(b"/Producer"):]
    with pytest.raises(verify.VerificationError) as failure:
        verify.verify_pdf(edited, pinned_keys=[log.vkey])
    assert failure.value.where == "pdf signature D2RAuditSignature"
    assert "edited after signing" in failure.value.why
    # Content appended after signing, as an incremental update.
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    writer.root["/PageMode"] = generic.NameObject("/UseOutlines")
    writer.update_root()
    appended = io.BytesIO()
    writer.write(appended)
    with pytest.raises(verify.VerificationError) as failure:
        verify.verify_pdf(appended.getvalue(), pinned_keys=[log.vkey])
    assert "does not cover the whole file" in failure.value.why


def test_stored_tile_changed_in_sql_stops_the_next_tree_head(log: Log) -> None:
    """Tree heads are computed from stored tiles: a forged tile must not be signed over."""
    from django.db import transaction

    with schema_context(SCHEMA):
        with transaction.atomic():
            for i in range(7, 300):
                _append(i)
        services.tree_head_issue()
        assert MerkleNode.objects.count() == 1
    _superuser(f"UPDATE {SCHEMA}.audit_merklenode SET hash = %s", params=["00" * 32])
    with schema_context(SCHEMA):
        _append(300)
        with pytest.raises(services.LogIntegrityError, match="no longer matches"):
            services.tree_head_issue()


def test_concurrent_writers_never_fork_or_reuse_a_sequence_number(log: Log) -> None:
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            with schema_context(SCHEMA):
                for i in range(15):
                    services.audit_append(action="load", actor=f"worker:{worker}",
                                          object_type="test", object_id=i, payload={"i": i})
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with schema_context(SCHEMA):
        assert list(Entry.objects.values_list("seq", flat=True)) == list(range(7 + 60))
        services.tree_head_issue()
        assert selectors.log_verify().ok


def test_export_end_to_end_through_the_api_and_a_worker(log: Log, tmp_path: Path) -> None:
    """Auditor asks over HTTP, a Celery worker builds it, the download verifies offline."""
    from celery.contrib.testing.worker import start_worker
    from django.contrib.auth import get_user_model
    from django.test import Client

    from accounts.models import Membership
    from d2r.celery import app as celery_app

    with schema_context(SCHEMA):
        user = get_user_model().objects.create_user(username="auditor@tamper.test")
        Membership.objects.create(user=user, role="auditor")
        client = Client(HTTP_HOST="tamper.localhost")
        client.force_login(user)
    with start_worker(celery_app, perform_ping_check=False, pool="solo", queues=["reports"],
                      shutdown_timeout=10):
        job = client.post("/api/v1/audit/exports", {"kind": "pdf"},
                          content_type="application/json").json()
        for _ in range(300):
            status = client.get(f"/api/v1/audit/exports/{job['id']}").json()
            if status["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
    assert (status["status"], status["progress"]) == ("done", 100), status
    response = client.get(f"/api/v1/audit/exports/{job['id']}/download")
    assert response["Content-Type"] == "application/pdf"
    (tmp_path / "report.pdf").write_bytes(b"".join(response.streaming_content))
    result = subprocess.run([sys.executable, "-m", "audit.verify", str(tmp_path / "report.pdf"),
                             "--key", log.vkey], capture_output=True, text=True, cwd=ROOT,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].startswith("ok   1 PDF signature(s)")
