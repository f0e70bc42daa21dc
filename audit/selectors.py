"""Reads of the audit log: entries, tree heads, proofs, receipts, exports."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from audit.ledger.merkle import MerkleTree
from audit.models import Entry, ExportJob, LogKey, Receipt, TreeHead


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


def log_tree(size: int, *, strict: bool = True) -> MerkleTree:
    """The Merkle tree of entries ``0 .. size-1`` from the stored leaf hashes.

    O(size) to build (about 1 s per million entries); proofs from it take microseconds.
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
    tree = log_tree(head.size)
    return InclusionProof(leaf_index=seq, tree_size=head.size,
                          leaf_hash=tree.leaf_hash(seq).hex(),
                          proof=[h.hex() for h in tree.inclusion_proof(seq, head.size)],
                          tree_head=head)


def consistency_proof_get(*, old_size: int, new_size: int) -> list[str]:
    """The RFC 9162 consistency proof between the trees of ``old_size`` and ``new_size``."""
    return [h.hex() for h in log_tree(new_size).consistency_proof(old_size, new_size)]


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
