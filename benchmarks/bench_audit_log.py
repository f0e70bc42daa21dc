"""The audit log in PostgreSQL (ADR 0004): append rate with concurrent writers, tree heads,
proofs served from the database, and the offline verifier on an exported bundle.

Runs in a throw-away workspace ``bench_audit`` (created, then dropped). Prints:

* ``audit_append_per_s``: committed appends per second with ``WRITERS`` threads,
  each its own connection, each append its own transaction (the worst case: real
  services append inside a transaction they already pay for);
* ``audit_append_per_s_1_writer``: the same with one writer;
* ``audit_tree_head_ms_<n>``: signing a tree head over ``n`` entries, right after the
  log grew to ``n`` (rechecks the new entries, stores their tiles, signs);
* ``audit_proof_from_db_ms_<n>``: an inclusion proof plus a consistency proof served
  from the database at ``n`` entries (read from the stored tiles: O(log n) rows);
* ``audit_period_export_<k>_of_<n>_seconds`` / ``audit_period_verify_…``: building and
  verifying the bundle of a period of ``k`` entries in the middle of the ``n``-entry log
  (range proof to the latest head), and ``audit_period_range_proof_hashes`` its size;
* ``audit_offline_verify_entries_per_s``: ``d2r-verify``'s bundle check (chain,
  payload hashes, heads, receipts) on the exported log.

The Merkle core alone on 1 M entries (``audit_verify_1m_seconds``,
``audit_verify_vs_sha256_ratio``, ``audit_proof_ms``) is ``bench_audit_merkle.py``.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import django

django.setup()

from django.db import connection  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from audit import exports, selectors, services, verify  # noqa: E402
from audit.ledger.checkpoint import VerifierKey  # noqa: E402
from audit.ledger.merkle import leaf_hash  # noqa: E402
from audit.models import Entry, LogKey  # noqa: E402
from d2r.db.privileged import privileged  # noqa: E402
from tenants import dbroles  # noqa: E402
from tenants import services as tenant_services  # noqa: E402
from tenants.models import Domain, Tenant  # noqa: E402

SCHEMA = "bench_audit"
WRITERS = 4
APPENDS_PER_WRITER = 250
PERIOD = 10_000  # entries of the period exported from the largest log
# Log sizes at which a tree head is signed and proofs are served from the database.
SIZES = [int(n) for n in os.environ.get("BENCH_AUDIT_SIZES", "20000,200000,1000000").split(",")]


def _drop() -> None:
    with privileged():
        Domain.objects.filter(tenant__schema_name=SCHEMA).delete()
        Tenant.objects.filter(schema_name=SCHEMA).delete()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        dbroles.tenant_role_drop(SCHEMA)


def _append_rate(writers: int, per_writer: int) -> float:
    barrier = threading.Barrier(writers + 1)
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            with schema_context(SCHEMA):
                Entry.objects.exists()  # connect and set the role before the clock starts
                barrier.wait()
                for i in range(per_writer):
                    services.audit_append(action="bench.append", actor=f"worker:{worker}",
                                          object_type="bench", object_id=i,
                                          payload={"worker": worker, "i": i, "pad": "x" * 120})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return writers * per_writer / elapsed


def _bulk_fill(target: int) -> None:
    """Grow the log to ``target`` entries quickly: the rows ``audit_append`` would write,
    computed here and inserted 10,000 at a time under the log's lock."""
    from django.db import transaction
    from django.utils import timezone

    from audit.ledger.entry import GENESIS_HASH, EntryFields, canonical_json, sha256_hex

    with schema_context(SCHEMA):
        last = Entry.objects.order_by("-seq").values("seq", "entry_hash").first()
        seq = 0 if last is None else last["seq"] + 1
        prev = GENESIS_HASH if last is None else last["entry_hash"]
        while seq < target:
            rows = []
            with transaction.atomic():
                services._lock_log()
                now = timezone.now()
                time_text = services.entry_time_text(now)
                for _ in range(min(10_000, target - seq)):
                    payload = canonical_json({"i": seq, "pad": "x" * 120})
                    fields = EntryFields(seq=seq, time=time_text, actor="bench",
                                         action="bench.fill", object_type="bench",
                                         object_id=str(seq),
                                         payload_sha256=sha256_hex(payload), prev_hash=prev)
                    data = fields.to_bytes()
                    prev = sha256_hex(data)
                    rows.append(Entry(seq=seq, time=now, actor="bench", action="bench.fill",
                                      object_type="bench", object_id=str(seq), payload=payload,
                                      payload_sha256=fields.payload_sha256,
                                      prev_hash=fields.prev_hash, entry_hash=prev,
                                      leaf_hash=leaf_hash(data).hex()))
                    seq += 1
                Entry.objects.bulk_create(rows)


def _proof_ms(size: int) -> tuple[float, float]:
    """Sign a head over ``size`` entries (ms), then the median inclusion + consistency proof
    served from the database (ms)."""
    with schema_context(SCHEMA):
        start = time.perf_counter()
        head = services.tree_head_issue()
        head_ms = (time.perf_counter() - start) * 1000
        heads = list(selectors.tree_head_list())
        samples = []
        for seq in (0, size // 3, size // 2 + 7, size - 1):
            start = time.perf_counter()
            proof = selectors.inclusion_proof_get(seq=seq, tree_head=head)
            selectors.consistency_proof_get(old_size=heads[0].size, new_size=head.size)
            samples.append((time.perf_counter() - start) * 1000)
            assert proof is not None
        tree = selectors.log_tree(size)  # the in-memory tree agrees with the stored tiles
        assert proof.proof == [h.hex() for h in tree.inclusion_proof(size - 1, size)]
    return head_ms, statistics.median(samples)


def main() -> None:
    _drop()
    with privileged():
        tenant_services.tenant_create(slug=SCHEMA, name="Bench audit", domain="bench-audit.local",
                                      admin_email="bench@audit.test")
    try:
        one = _append_rate(1, APPENDS_PER_WRITER)
        many = _append_rate(WRITERS, APPENDS_PER_WRITER)
        with schema_context(SCHEMA):
            seqs = list(Entry.objects.values_list("seq", flat=True))
            assert seqs == list(range(len(seqs))), "sequence numbers are not dense"
        print(f"BENCH audit_append_per_s {many:.0f}")
        print(f"BENCH audit_append_per_s_1_writer {one:.0f}")
        print(f"BENCH audit_append_writers {WRITERS}")

        for size in SIZES:
            _bulk_fill(size)
            head_ms, proof_ms = _proof_ms(size)
            print(f"BENCH audit_tree_head_ms_{size} {head_ms:.1f}")
            print(f"BENCH audit_proof_from_db_ms_{size} {proof_ms:.2f}")
        with schema_context(SCHEMA):
            size = SIZES[-1]
            start = time.perf_counter()
            scoped = exports.bundle_build(seq_range=(size // 2, size // 2 + PERIOD))
            scoped_s = time.perf_counter() - start
            keys = [VerifierKey.parse(k.public) for k in LogKey.objects.filter(kind="note")]
        start = time.perf_counter()
        verify.verify_bundle_dict(scoped, keys, verify.Report())
        scoped_verify_s = time.perf_counter() - start
        print(f"BENCH audit_period_export_{PERIOD}_of_{size}_seconds {scoped_s:.2f}")
        print(f"BENCH audit_period_verify_{PERIOD}_of_{size}_seconds {scoped_verify_s:.2f}")
        print(f"BENCH audit_period_range_proof_hashes {len(scoped['range_proof']['proof'])}")
        with schema_context(SCHEMA):
            bundle = exports.bundle_build()
            keys = [VerifierKey.parse(k.public) for k in LogKey.objects.filter(kind="note")]
        start = time.perf_counter()
        verify.verify_bundle_dict(bundle, keys, verify.Report())
        verify_s = time.perf_counter() - start
        print(f"BENCH audit_offline_verify_entries_per_s {len(bundle['entries']) / verify_s:.0f}")
    finally:
        connection.set_schema_to_public()
        _drop()


if __name__ == "__main__":
    main()
