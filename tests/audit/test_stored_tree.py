"""Tree heads and proofs from stored tiles: O(log n) rows per proof, same bytes as in memory.

Also the compiled batch hashing of :mod:`audit.ledger.native`, against hashlib.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from audit import selectors, services
from audit.ledger import merkle, native
from audit.models import Entry, MerkleNode

pytestmark = pytest.mark.django_db


def _append(n: int) -> None:
    with transaction.atomic():
        for i in range(n):
            services.audit_append(action="qc.decision", actor="user:qc@alpha.test",
                                  object_type="inspections.QcResult", object_id=i,
                                  payload={"n": i})


def _selects(queries: CaptureQueriesContext) -> list[str]:
    """The statements that read rows (the role switch of every cursor is not one)."""
    return [q["sql"] for q in queries if q["sql"].startswith("SELECT")]


def _in_memory(size: int) -> merkle.MerkleTree:
    hexes = Entry.objects.filter(seq__lt=size).order_by("seq").values_list("leaf_hash", flat=True)
    return merkle.MerkleTree(bytes.fromhex("".join(hexes)))


def test_tree_heads_store_tiles_and_proofs_read_a_few_rows() -> None:
    with schema_context("alpha"):
        _append(300)
        first = services.tree_head_issue()
        assert list(MerkleNode.objects.values_list("level", "index")) == [(8, 0)]
        _append(300)
        second = services.tree_head_issue()  # adds node 1, reads only the new leaves
        assert list(MerkleNode.objects.order_by("index").values_list("level", "index")) == [
            (8, 0), (8, 1)]
        full = _in_memory(600)
        assert second.root_hash == full.root().hex()
        assert first.root_hash == full.root(300).hex()
        for seq in (0, 255, 256, 299, 511, 599):
            with CaptureQueriesContext(connection) as queries:
                proof = selectors.inclusion_proof_get(seq=seq)
            assert proof is not None
            assert proof.proof == [h.hex() for h in full.inclusion_proof(seq, 600)]
            assert len(_selects(queries)) <= 5, _selects(queries)
        with CaptureQueriesContext(connection) as queries:
            consistency = selectors.consistency_proof_get(old_size=300, new_size=600)
        assert consistency == [h.hex() for h in full.consistency_proof(300, 600)]
        assert len(_selects(queries)) <= 4, _selects(queries)
        assert selectors.log_verify().ok


def test_stored_tiles_are_append_only() -> None:
    with schema_context("alpha"):
        _append(260)
        services.tree_head_issue()
        with pytest.raises(Exception, match="permission denied"), transaction.atomic():
            MerkleNode.objects.update(hash="00" * 32)


@pytest.mark.parametrize("count", [1, 2, 3, 255, 4095, 4096, 4097, 10_000])
def test_compiled_hashing_matches_hashlib(count: int) -> None:
    assert native.available(), "the compiled path must be exercised here"
    rng = random.Random(count)
    entries = [rng.randbytes(rng.randrange(0, 300)) for _ in range(count)]
    leaves = [hashlib.sha256(b"\x00" + e).digest() for e in entries]
    assert native.leaf_hashes(entries) == b"".join(leaves)

    def reference(hashes: list[bytes]) -> bytes:  # RFC 6962 MTH, recursively
        if len(hashes) == 1:
            return hashes[0]
        k = 1 << ((len(hashes) - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + reference(hashes[:k]) + reference(hashes[k:])).digest()

    expected = reference(leaves)
    assert native.entries_root(entries) == expected
    assert merkle.root_from_entries(entries) == expected
    assert merkle.MerkleTree(leaves).root() == expected
    pairs = b"".join(leaves[: count // 2 * 2])
    assert native.node_hashes(pairs) == b"".join(
        hashlib.sha256(b"\x01" + pairs[i : i + 64]).digest() for i in range(0, len(pairs), 64))
