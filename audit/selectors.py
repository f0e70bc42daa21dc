"""Reads of the audit log: entries, tree heads, proofs, receipts, exports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from audit.ledger.merkle import MerkleTree, StoredTree
from audit.models import Entry, ExportJob, LogKey, MerkleNode, Receipt, TreeHead


def entry_list() -> QuerySet[Entry]:
    """Every entry of the current workspace, in sequence order."""
    return Entry.objects.order_by("seq")


def tree_head_list() -> QuerySet[TreeHead]:
    """Every signed tree head, smallest first."""
    return TreeHead.objects.order_by("size", "id")


def tree_head_latest() -> TreeHead | None:
    """The signed tree head covering the most entries (None before the first one)."""
    return TreeHead.objects.order_by("-size", "-id").first()


def log_key_list() -> QuerySet[LogKey]:
    """Every public key the log has ever signed with."""
    return LogKey.objects.order_by("kind", "created_at", "id")


def receipt_list() -> QuerySet[Receipt]:
    return Receipt.objects.select_related("entry").order_by("-created_at")


def export_list() -> QuerySet[ExportJob]:
    return ExportJob.objects.order_by("-id")


def leaf_hashes_range(lo: int, hi: int) -> bytes:
    """The stored leaf hashes of entries ``lo .. hi-1`` (fewer if the log ends), concatenated."""
    hexes = (Entry.objects.filter(seq__gte=lo, seq__lt=hi).order_by("seq")
             .values_list("leaf_hash", flat=True))
    return bytes.fromhex("".join(_rows(hexes, hi - lo)))


def node_hashes_range(level: int, lo: int, hi: int) -> bytes:
    """The stored tile hashes ``lo .. hi-1`` of ``level`` (see ``MerkleNode``), concatenated."""
    hexes = (MerkleNode.objects.filter(level=level, index__gte=lo, index__lt=hi)
             .order_by("index").values_list("hash", flat=True))
    return bytes.fromhex("".join(_rows(hexes, hi - lo)))


def _rows(query: QuerySet[Any], count: int) -> Iterable[Any]:
    """A tile's rows in one round trip; a long range through a server-side cursor."""
    return query.iterator(chunk_size=20_000) if count > 20_000 else list(query)


def stored_tree(size: int) -> StoredTree:
    """The tree of entries ``0 .. size-1`` read from the stored tiles: O(log n) rows per proof.

    Valid for sizes up to the latest signed tree head (whose tiles are stored when it
    is signed); asking beyond what is stored raises ``LookupError``.
    """
    return StoredTree(size, leaves=leaf_hashes_range, nodes=node_hashes_range)


def log_tree(size: int, *, strict: bool = True) -> MerkleTree:
    """The whole Merkle tree of entries ``0 .. size-1``, in memory, from the leaf hashes.

    O(size) to build (about 0.3 s per million entries); then any number of proofs take
    microseconds each, which is what an export wants. For one proof use ``stored_tree``.
    ``strict``: raise if entries are missing (else return the smaller tree).
    """
    hexes = Entry.objects.filter(seq__lt=size).order_by("seq").values_list("leaf_hash", flat=True)
    tree = MerkleTree(bytes.fromhex("".join(hexes.iterator(chunk_size=20_000))))
    if strict and tree.size != size:
        raise ValueError(f"log holds {tree.size} entries below {size}")
    return tree


@dataclass(frozen=True)
class InclusionProof:
    """Entry ``leaf_index`` is in the tree head ``tree_head`` (of ``tree_size`` entries)."""

    leaf_index: int
    tree_size: int
    leaf_hash: str
    proof: list[str]
    tree_head: TreeHead


def inclusion_proof_get(*, seq: int, tree_head: TreeHead | None = None) -> InclusionProof | None:
    """The inclusion proof of entry ``seq`` in ``tree_head`` (default: the latest).

    None when no signed tree head covers the entry yet.
    """
    head = tree_head or tree_head_latest()
    if head is None or seq >= head.size:
        return None
    tree = stored_tree(head.size)
    return InclusionProof(leaf_index=seq, tree_size=head.size,
                          leaf_hash=tree.leaf_hash(seq).hex(),
                          proof=[h.hex() for h in tree.inclusion_proof(seq, head.size)],
                          tree_head=head)


def consistency_proof_get(*, old_size: int, new_size: int) -> list[str]:
    """The RFC 9162 consistency proof between the trees of ``old_size`` and ``new_size``."""
    return [h.hex() for h in stored_tree(new_size).consistency_proof(old_size, new_size)]


@dataclass(frozen=True)
class LogVerification:
    """The result of checking the stored log the way the offline verifier does."""

    ok: bool
    checks: list[str]
    failure: str | None


def log_verify() -> LogVerification:
    """Check the whole stored log (chain, every signed head, receipts) in the database.

    The same code as ``d2r-verify`` (audit.verify) on a freshly built, unsigned bundle,
    trusting the keys recorded in ``LogKey``.
    """
    from audit import exports, verify

    bundle = exports.bundle_build()
    report = verify.Report()
    try:
        keys = [verify.VerifierKey.parse(k) for k in bundle["keys"]["note"]]
        verify.verify_bundle_dict(bundle, keys, report)
    except verify.VerificationError as exc:
        return LogVerification(ok=False, checks=report.checks, failure=str(exc))
    return LogVerification(ok=True, checks=report.checks, failure=None)
