"""The audit log in PostgreSQL (ADR 0004): append rate with concurrent writers, tree heads,
proofs served from the database, and the offline verifier on an exported bundle.

Runs in a throw-away workspace ``bench_audit`` (created, then dropped). Prints:

* ``audit_append_per_s``: committed appends per second with ``WRITERS`` threads,
  each its own connection, each append its own transaction (the worst case: real
  services append inside a transaction they already pay for);
* ``audit_append_per_s_1_writer``: the same with one writer;
* ``audit_tree_head_ms_<n>``: signing a tree head over ``n`` entries (reads every leaf);
* ``audit_proof_from_db_ms_<n>``: an inclusion proof served from the database
  (loads the ``n`` stored leaf hashes, builds the tree, one proof);
* ``audit_offline_verify_entries_per_s``: ``d2r-verify``'s bundle check (chain,
  payload hashes, heads, receipts) on the exported log.

The Merkle core alone on 1 M entries (``audit_verify_1m_seconds``,
``audit_verify_vs_sha256_ratio``, ``audit_proof_ms``) is ``bench_audit_merkle.py``.
"""

from __future__ import annotations

import statistics
import threading
import time

import django

django.setup()

from django.db import connection  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from audit import exports, selectors, services, verify  # noqa: E402
from audit.ledger.checkpoint import VerifierKey  # noqa: E402
from audit.models import Entry, LogKey  # noqa: E402
from d2r.db.privileged import privileged  # noqa: E402
from tenants import dbroles  # noqa: E402
from tenants import services as tenant_services  # noqa: E402
from tenants.models import Domain, Tenant  # noqa: E402

SCHEMA = "bench_audit"
WRITERS = 4
APPENDS_PER_WRITER = 250
BULK = 20_000


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
    """Grow the log to ``target`` entries quickly (one transaction per 1,000 appends)."""
    from django.db import transaction

    with schema_context(SCHEMA):
        count = Entry.objects.count()
        while count < target:
            with transaction.atomic():
                for i in range(min(1000, target - count)):
                    services.audit_append(action="bench.fill", actor="bench", object_type="bench",
                                          object_id=count + i, payload={"i": count + i})
            count = Entry.objects.count()


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

        _bulk_fill(BULK)
        with schema_context(SCHEMA):
            start = time.perf_counter()
            head = services.tree_head_issue()
            head_ms = (time.perf_counter() - start) * 1000
            samples = []
            for seq in (0, BULK // 3, BULK - 1):
                start = time.perf_counter()
                proof = selectors.inclusion_proof_get(seq=seq, tree_head=head)
                samples.append((time.perf_counter() - start) * 1000)
                assert proof is not None
            bundle = exports.bundle_build()
            keys = [VerifierKey.parse(k.public) for k in LogKey.objects.filter(kind="note")]
        start = time.perf_counter()
        verify.verify_bundle_dict(bundle, keys, verify.Report())
        verify_s = time.perf_counter() - start
        print(f"BENCH audit_tree_head_ms_{BULK} {head_ms:.1f}")
        print(f"BENCH audit_proof_from_db_ms_{BULK} {statistics.median(samples):.1f}")
        print(f"BENCH audit_offline_verify_entries_per_s {len(bundle['entries']) / verify_s:.0f}")
    finally:
        connection.set_schema_to_public()
        _drop()


if __name__ == "__main__":
    main()
