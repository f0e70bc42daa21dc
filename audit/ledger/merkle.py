"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.

Django-free: this module only needs :mod:`hashlib`. The hashing is the one of
RFC 9162 section 2.1 (identical to RFC 6962):

* leaf hash ``MTH({d}) = SHA-256(0x00 || d)``
* node hash ``SHA-256(0x01 || left || right)``
* empty tree ``MTH({}) = SHA-256("")``
* for ``n > 1`` leaves, ``k`` is the largest power of two smaller than ``n`` and
  ``MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n]))``.

Invariants relied on everywhere below:

* every hash handled here is exactly :data:`HASH_SIZE` (32) bytes; anything else
  given to a verifier is a :class:`MalformedProofError`, never a silent pass;
* verifiers return ``None`` on success and raise a :class:`ProofError` subclass
  on *every* failure (malformed input or a root that does not match);
* proofs are lists of hashes ordered from the leaf level upwards, exactly as in
  RFC 9162 section 2.1.3 / 2.1.4 (and as in the transparency-dev test vectors).

Performance notes (measured on one core, see ``benchmarks/bench_audit_merkle.py``):
each SHA-256 call through :mod:`hashlib` costs about 0.3 µs of fixed overhead on
OpenSSL 3, so the loops below are list comprehensions over ``zip`` with as few
Python operations per hash as possible; that is the fastest pure-Python form we
found (faster than ``map`` pipelines, ``memoryview`` slicing or ``hash.copy()``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from hashlib import sha256
from itertools import islice

from audit.ledger import native

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "STRIDE",
    "MalformedProofError",
    "MerkleTree",
    "ProofError",
    "RootMismatchError",
    "StoredTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "root",
    "root_from_entries",
    "root_from_inclusion_proof",
    "root_from_range",
    "stored_level",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
    "verify_range",
]

HASH_SIZE = 32
"""Size in bytes of every hash (SHA-256)."""

EMPTY_ROOT = sha256(b"").digest()
"""Root hash of the empty tree: SHA-256 of the empty string."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_MAX_SIZE = (1 << 64) - 1
# Entries hashed per batch by root_from_entries: a power of two, so that every
# full batch is a complete subtree; big enough to amortise the batch overhead,
# small enough to keep the working set in cache and the memory bounded.
_ENTRY_BATCH_LOG2 = 12
_ENTRY_BATCH = 1 << _ENTRY_BATCH_LOG2


class ProofError(ValueError):
    """Base class of every Merkle proof verification failure."""


class MalformedProofError(ProofError):
    """The proof or its parameters are structurally invalid.

    Wrong hash length, index or sizes out of range, wrong number of proof
    elements: the proof could not possibly be valid, whatever the hashes.
    """


class RootMismatchError(ProofError):
    """The proof is well formed but the recomputed root differs from the expected one."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash ``SHA-256(0x00 || data)``."""
    return sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash ``SHA-256(0x01 || left || right)``."""
    return sha256(_NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _pair_hashes(level: bytes | bytearray | memoryview) -> bytes:
    """Parents of each whole pair of 32-byte hashes in ``level`` (an odd last one is ignored)."""
    end = len(level) // 64 * 64
    if native.worth(end // 64):
        return native.node_hashes(memoryview(level)[:end])
    view = bytes(level[:end])
    prefix = _NODE_PREFIX
    return b"".join([sha256(prefix + view[i : i + 64]).digest() for i in range(0, end, 64)])


def _buffer_root(level: bytes) -> bytes:
    """Return the root over a non-empty buffer of 32-byte hashes, level by level.

    Pairing level by level and promoting an odd last node unchanged to the next
    level yields exactly the RFC 6962 tree (whose left subtrees are always
    complete).
    """
    while len(level) > HASH_SIZE:
        parents = _pair_hashes(level)
        if (len(level) // HASH_SIZE) & 1:
            parents += level[-HASH_SIZE:]
        level = parents
    return level


def _list_root(hashes: list[bytes]) -> bytes:
    """Return the root over a non-empty list of 32-byte hashes (see :func:`_buffer_root`)."""
    if native.worth(len(hashes)):
        return _buffer_root(b"".join(hashes))
    level = hashes
    prefix = _NODE_PREFIX
    while len(level) > 1:
        it = iter(level)
        parents = [sha256(prefix + a + b).digest() for a, b in zip(it, it, strict=False)]
        if len(level) & 1:
            parents.append(level[-1])
        level = parents
    return level[0]


def leaf_hashes(entries: Sequence[bytes]) -> bytes:
    """The leaf hashes of raw ``entries``, concatenated (compiled for large batches)."""
    if native.worth(len(entries)):
        return native.leaf_hashes(entries)
    prefix = _LEAF_PREFIX
    return b"".join([sha256(prefix + e).digest() for e in entries])


def _check_hash(value: object, what: str) -> bytes:
    """Return ``value`` as bytes if it is a 32-byte hash, else raise MalformedProofError."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise MalformedProofError(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise MalformedProofError(f"{what} has {len(value)} bytes, expected {HASH_SIZE}")
    return bytes(value)


def _check_proof(proof: Sequence[bytes] | None) -> list[bytes]:
    """Return the proof as a list of 32-byte hashes (``None`` means empty)."""
    if proof is None:
        return []
    return [_check_hash(h, f"proof[{i}]") for i, h in enumerate(proof)]


def _check_size(value: object, what: str) -> int:
    """Return ``value`` if it is an int in [0, 2**64 - 1], else raise MalformedProofError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedProofError(f"{what} must be an int, got {type(value).__name__}")
    if not 0 <= value <= _MAX_SIZE:
        raise MalformedProofError(f"{what} {value} is outside [0, 2**64 - 1]")
    return value


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle tree root over ``leaf_hashes`` (each 32 bytes).

    An empty sequence gives :data:`EMPTY_ROOT`. Raises ``ValueError`` when a leaf
    hash is not 32 bytes.
    """
    hashes = list(leaf_hashes)
    if not hashes:
        return EMPTY_ROOT
    if not set(map(type, hashes)) <= {bytes}:
        hashes = [bytes(h) for h in hashes]
    if not set(map(len, hashes)) <= {HASH_SIZE}:
        raise ValueError(f"every leaf hash must be {HASH_SIZE} bytes")
    return _list_root(hashes)


def _fold_entries(entries: Iterable[bytes]) -> tuple[int, bytes]:
    """Return ``(count, root)`` of the tree whose leaves are the raw ``entries``.

    Streams: entries are consumed in batches of ``_ENTRY_BATCH``; each full batch
    is a complete subtree whose root is pushed on a stack holding the binary
    decomposition of the number of full batches (largest subtree first, merged
    like a binary counter). The last, partial batch and the stack are folded
    right to left, which is exactly the RFC 6962 shape.
    """
    it = iter(entries)
    stack: list[bytes] = []
    full_batches = 0
    count = 0
    tail: bytes | None = None
    leaf_prefix = _LEAF_PREFIX
    node_prefix = _NODE_PREFIX
    compiled = native.worth(len(entries) if isinstance(entries, Sequence) else 0)
    while True:
        batch = list(islice(it, _ENTRY_BATCH))
        if not batch:
            break
        count += len(batch)
        if compiled and len(batch) >= native.MIN_BATCH // 4:
            batch_root = native.entries_root(batch)
        else:
            batch_root = _list_root([sha256(leaf_prefix + e).digest() for e in batch])
        if len(batch) < _ENTRY_BATCH:
            tail = batch_root  # islice came back short: the iterator is exhausted
            break
        stack.append(batch_root)
        full_batches += 1
        carry = full_batches
        while not carry & 1:
            right = stack.pop()
            stack[-1] = sha256(node_prefix + stack[-1] + right).digest()
            carry >>= 1
    if tail is not None:
        stack.append(tail)
    if not stack:
        return 0, EMPTY_ROOT
    acc = stack.pop()
    while stack:
        acc = sha256(node_prefix + stack.pop() + acc).digest()
    return count, acc


def root_from_entries(entries: Iterable[bytes]) -> bytes:
    """Return the Merkle root over the raw log ``entries`` (leaf data, not leaf hashes).

    The iterable is consumed once and streamed (memory bounded by one batch of
    leaf hashes plus O(log n)), so it may be a database cursor. This is the
    full-log verification primitive: recompute the root from every entry and
    compare it with a signed checkpoint (see :func:`verify_log`).
    """
    return _fold_entries(entries)[1]


def verify_log(entries: Iterable[bytes], size: int, expected_root: bytes) -> None:
    """Check that the raw ``entries`` form a log of ``size`` leaves with root ``expected_root``.

    Raises :class:`MalformedProofError` if the number of entries is not ``size``
    or the root is not 32 bytes, :class:`RootMismatchError` if the recomputed
    root differs.
    """
    _check_size(size, "size")
    expected = _check_hash(expected_root, "expected root")
    count, got = _fold_entries(entries)
    if count != size:
        raise MalformedProofError(f"log holds {count} entries, expected {size}")
    if got != expected:
        raise RootMismatchError(
            f"recomputed root {got.hex()} differs from expected {expected.hex()} at size {size}"
        )


class _SubtreeProofs(ABC):
    """Roots and RFC 9162 proofs over any store of complete aligned subtree hashes.

    Subclasses give ``size`` and ``_complete(level, index)``: the hash of the
    ``index``-th complete subtree of ``2**level`` leaves.
    """

    __slots__ = ()

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of leaves."""

    @abstractmethod
    def _complete(self, level: int, index: int) -> bytes:
        """The hash of the ``index``-th complete subtree of ``2**level`` leaves."""

    def _subtree(self, lo: int, hi: int) -> bytes:
        """Return ``MTH(D[lo:hi])`` for an RFC 6962 subtree, ``0 <= lo < hi <= size``.

        Precondition (true of every range the RFC recursion produces): ``lo`` is a
        multiple of a power of two >= ``hi - lo``. The range is then the binary
        decomposition of its width into complete aligned subtrees, folded right.
        """
        parts: list[bytes] = []
        pos = lo
        width = hi - lo
        while width:
            bit = width.bit_length() - 1
            parts.append(self._complete(bit, pos >> bit))
            pos += 1 << bit
            width -= 1 << bit
        acc = parts.pop()
        while parts:
            acc = sha256(_NODE_PREFIX + parts.pop() + acc).digest()
        return acc

    def _check_tree_size(self, size: int | None) -> int:
        """Return ``size`` (default: current size) after checking ``0 <= size <= self.size``."""
        if size is None:
            return self.size
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= self.size:
            raise ValueError(f"size {size!r} is outside [0, {self.size}]")
        return size

    def leaf_hash(self, index: int) -> bytes:
        """Return the leaf hash at ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf index {index} is outside [0, {self.size})")
        return self._complete(0, index)

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the first ``size`` leaves (default: all of them)."""
        size = self._check_tree_size(size)
        return EMPTY_ROOT if size == 0 else self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the RFC 9162 inclusion proof ``PATH(index, D[0:size])``.

        Requires ``0 <= index < size <= self.size``. O(log n) hashes: once the
        walk goes left, every sibling is a complete cached subtree.
        """
        size = self._check_tree_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside [0, {size})")
        proof: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            mid = lo + _largest_power_of_two_below(hi - lo)
            if index < mid:
                proof.append(self._subtree(mid, hi))
                hi = mid
            else:
                proof.append(self._subtree(lo, mid))
                lo = mid
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Return the RFC 9162 consistency proof ``PROOF(old_size, D[0:new_size])``.

        Requires ``0 <= old_size <= new_size <= self.size``; the proof is empty when
        ``old_size`` is 0 or equals ``new_size`` (nothing to prove).
        """
        new_size = self._check_tree_size(new_size)
        if not isinstance(old_size, int) or not 0 <= old_size <= new_size:
            raise ValueError(f"old size {old_size!r} is outside [0, {new_size}]")
        if old_size in (0, new_size):
            return []
        proof: list[bytes] = []
        lo, hi = 0, new_size
        starts_at_old_root = True  # the "b" flag of RFC 9162 SUBPROOF
        while old_size != hi:
            mid = lo + _largest_power_of_two_below(hi - lo)
            if old_size <= mid:
                proof.append(self._subtree(mid, hi))
                hi = mid
            else:
                proof.append(self._subtree(lo, mid))
                lo = mid
                starts_at_old_root = False
        if not starts_at_old_root:
            proof.append(self._subtree(lo, hi))
        proof.reverse()
        return proof

    def range_proof(self, start: int, end: int, size: int | None = None) -> list[bytes]:
        """Return the hashes that, with leaves ``start .. end-1``, give the root of ``size``.

        They are the subtrees of the RFC 6962 recursion lying wholly outside the range,
        left to right (a compact range proof, at most about ``2 * log2(size)`` hashes):
        an export of one period proves its entries without carrying the whole log.
        Requires ``0 <= start < end <= size <= self.size``.
        """
        size = self._check_tree_size(size)
        if not 0 <= start < end <= size:
            raise ValueError(f"range [{start}, {end}) is not a non-empty part of [0, {size})")
        proof: list[bytes] = []

        def walk(lo: int, hi: int) -> None:
            if hi <= start or lo >= end:
                proof.append(self._subtree(lo, hi))
            elif not (start <= lo and hi <= end):
                mid = lo + _largest_power_of_two_below(hi - lo)
                walk(lo, mid)
                walk(mid, hi)

        walk(0, size)
        return proof


class MerkleTree(_SubtreeProofs):
    """An append-only Merkle tree that caches every complete subtree hash.

    ``levels[k]`` is a ``bytearray`` holding, back to back, the 32-byte hashes of
    the complete subtrees of ``2**k`` leaves, left to right: it always holds
    exactly ``size >> k`` hashes. The hash of any complete aligned subtree is a
    slice; any RFC 6962 subtree (and so any root or proof element) is at most
    O(log n) slices and node hashes. Building costs one node hash per leaf;
    memory is about 64 bytes per leaf.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] | bytes | bytearray | memoryview = b"") -> None:
        """Build the tree over ``leaf_hashes``.

        Either an iterable of 32-byte leaf hashes, or one bytes-like buffer of
        leaf hashes concatenated (length a multiple of 32).
        """
        self._levels: list[bytearray] = [bytearray()]
        self.extend(leaf_hashes)

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MerkleTree:
        """Build the tree over raw log entries (hashing each as a leaf)."""
        return cls(leaf_hashes(list(entries)))

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0]) // HASH_SIZE

    def __len__(self) -> int:
        """Number of leaves."""
        return self.size

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash (amortised O(1) node hashes)."""
        self.extend([leaf_hash])

    def append_entry(self, entry: bytes) -> None:
        """Append one raw entry (hashed as a leaf)."""
        self.extend([sha256(_LEAF_PREFIX + entry).digest()])

    def extend(self, leaf_hashes: Iterable[bytes] | bytes | bytearray | memoryview) -> None:
        """Append leaf hashes, updating every cached level.

        Raises ``ValueError`` if a hash is not 32 bytes; on error the tree is
        left unchanged.
        """
        if isinstance(leaf_hashes, bytes | bytearray | memoryview):
            buf = bytes(leaf_hashes)
            if len(buf) % HASH_SIZE:
                raise ValueError(f"leaf hash buffer length {len(buf)} is not a multiple of 32")
        else:
            items = list(leaf_hashes)
            # C-level checks (map/set), about 20 ms per million hashes.
            if not set(map(type, items)) <= {bytes}:
                items = [bytes(h) for h in items]
            if not set(map(len, items)) <= {HASH_SIZE}:
                raise ValueError(f"every leaf hash must be {HASH_SIZE} bytes")
            buf = b"".join(items)
        if (len(self._levels[0]) + len(buf)) // HASH_SIZE > _MAX_SIZE:
            raise ValueError("tree size would exceed 2**64 - 1")
        k = 0
        while buf:
            if k == len(self._levels):
                self._levels.append(bytearray())
            level = self._levels[k]
            # An odd count means the last hash of this level still waits for its
            # right sibling: it pairs with the first new one.
            seq = bytes(level[-HASH_SIZE:]) + buf if (len(level) // HASH_SIZE) & 1 else buf
            level += buf
            buf = _pair_hashes(seq)
            k += 1

    def _complete(self, level: int, index: int) -> bytes:
        """Return the hash of the ``index``-th complete subtree of ``2**level`` leaves."""
        start = index * HASH_SIZE
        return bytes(self._levels[level][start : start + HASH_SIZE])


STRIDE = 8
"""A :class:`StoredTree` keeps the complete subtree hashes of every ``STRIDE``-th level."""


def stored_level(below: bytes | bytearray | memoryview) -> bytes:
    """The hashes one stored level up: the root of each group of ``2**STRIDE`` hashes.

    ``below`` holds whole groups only (a multiple of ``2**STRIDE`` hashes back to back).
    """
    group = HASH_SIZE << STRIDE
    if len(below) % group:
        raise ValueError(f"stored_level needs whole groups of {1 << STRIDE} hashes")
    if native.worth(len(below) // HASH_SIZE):
        level = bytes(below)
        for _ in range(STRIDE):
            level = native.node_hashes(level)
        return level
    return b"".join(_buffer_root(bytes(below[i : i + group])) for i in range(0, len(below), group))


class StoredTree(_SubtreeProofs):
    """A tree read from storage with O(log n) reads per root or proof, never O(n).

    Storage holds the leaf hashes, and the hash of every complete aligned subtree
    of ``2**(STRIDE*j)`` leaves (``j >= 1``), i.e. the levels 8, 16, 24 … of the
    tree, in groups of ``2**STRIDE`` (tiles). Any complete subtree is then at most
    ``2**(STRIDE-1)`` consecutive hashes of one tile of the stored level below it:
    a proof in a million-entry log reads a handful of tiles.

    ``leaves(lo, hi)`` and ``nodes(level, lo, hi)`` return the stored hashes in
    ``[lo, hi)`` (one tile), concatenated; fewer at the end of the store. Asking
    for a subtree the store does not hold is a :class:`LookupError`. Tiles are
    memoised per instance, so build one per request.
    """

    __slots__ = ("_leaves", "_nodes", "_size", "_tiles")

    def __init__(self, size: int, *, leaves: Callable[[int, int], bytes],
                 nodes: Callable[[int, int, int], bytes]) -> None:
        self._size = _check_size(size, "size")
        self._leaves = leaves
        self._nodes = nodes
        self._tiles: dict[tuple[int, int], bytes] = {}

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    def _tile(self, base: int, number: int) -> bytes:
        tile = self._tiles.get((base, number))
        if tile is None:
            lo, hi = number << STRIDE, (number + 1) << STRIDE
            tile = self._leaves(lo, hi) if base == 0 else self._nodes(base, lo, hi)
            self._tiles[(base, number)] = tile
        return tile

    def _complete(self, level: int, index: int) -> bytes:
        if (index + 1) << level > self._size:
            raise LookupError(f"no complete subtree {index} of level {level} in size {self._size}")
        base = level - level % STRIDE
        span = 1 << (level - base)
        first = index * span  # in hashes of the stored level ``base``
        offset = (first & ((1 << STRIDE) - 1)) * HASH_SIZE
        tile = self._tile(base, first >> STRIDE)
        hashes = tile[offset : offset + span * HASH_SIZE]
        if len(hashes) != span * HASH_SIZE:
            raise LookupError(f"store lacks level {base} hashes {first}..{first + span - 1}")
        return _buffer_root(hashes)


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """Return the inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves.

    Builds a :class:`MerkleTree` (O(size) hashes); to produce many proofs, build
    the tree once and call :meth:`MerkleTree.inclusion_proof`.
    """
    if not 0 <= size <= len(leaf_hashes):
        raise ValueError(f"size {size} is outside [0, {len(leaf_hashes)}]")
    return MerkleTree(leaf_hashes[:size]).inclusion_proof(index, size)


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """Return the consistency proof between the trees of the first ``old_size`` and
    ``new_size`` leaves. Builds a :class:`MerkleTree`, like :func:`inclusion_proof`.
    """
    if not 0 <= new_size <= len(leaf_hashes):
        raise ValueError(f"new size {new_size} is outside [0, {len(leaf_hashes)}]")
    return MerkleTree(leaf_hashes[:new_size]).consistency_proof(old_size, new_size)


def _decompose_inclusion(index: int, size: int) -> tuple[int, int]:
    """Split an inclusion proof length into (inner, border) parts.

    ``inner`` proof elements sit below the point where the paths to ``index`` and
    to ``size - 1`` meet; the ``border`` elements above it are all left siblings.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Hash ``seed`` up through ``proof``, the side chosen by the bits of ``index``."""
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = sha256(_NODE_PREFIX + h + seed).digest()
        else:
            seed = sha256(_NODE_PREFIX + seed + h).digest()
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like :func:`_chain_inner` but only through the left siblings (bits set in ``index``)."""
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = sha256(_NODE_PREFIX + h + seed).digest()
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Hash ``seed`` up through ``proof`` where every element is a left sibling."""
    for h in proof:
        seed = sha256(_NODE_PREFIX + h + seed).digest()
    return seed


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes] | None
) -> bytes:
    """Return the root implied by an inclusion proof; raise :class:`MalformedProofError`.

    Checks ``0 <= index < size``, 32-byte hashes and the exact proof length for
    (index, size) before hashing anything.
    """
    _check_size(index, "index")
    _check_size(size, "size")
    if index >= size:
        raise MalformedProofError(f"index {index} is not below tree size {size}")
    seed = _check_hash(leaf_hash, "leaf hash")
    path = _check_proof(proof)
    inner, border = _decompose_inclusion(index, size)
    if len(path) != inner + border:
        raise MalformedProofError(
            f"inclusion proof has {len(path)} hashes, expected {inner + border} "
            f"for index {index} in a tree of size {size}"
        )
    acc = _chain_inner(seed, path[:inner], index)
    return _chain_border_right(acc, path[inner:])


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes] | None, root: bytes
) -> None:
    """Verify that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    Returns ``None``; raises :class:`MalformedProofError` or
    :class:`RootMismatchError` on any failure.
    """
    expected = _check_hash(root, "root")
    got = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if got != expected:
        raise RootMismatchError(
            f"inclusion proof for index {index} in size {size} gives root {got.hex()}, "
            f"expected {expected.hex()}"
        )


def root_from_range(
    leaf_hashes: Sequence[bytes], start: int, size: int, proof: Sequence[bytes] | None
) -> bytes:
    """Return the root implied by the leaves ``start .. start+len-1`` and a range proof.

    Raises :class:`MalformedProofError` on a range outside the tree, a hash that is not
    32 bytes, or a proof with too few or too many hashes.
    """
    _check_size(start, "start")
    _check_size(size, "size")
    leaves = [_check_hash(h, f"leaf hash {start + i}") for i, h in enumerate(leaf_hashes)]
    end = start + len(leaves)
    if not start < end <= size:
        raise MalformedProofError(f"range [{start}, {end}) is not a non-empty part of "
                                  f"[0, {size})")
    hashes = iter(_check_proof(proof))

    def walk(lo: int, hi: int) -> bytes:
        if hi <= start or lo >= end:
            found = next(hashes, None)
            if found is None:
                raise MalformedProofError(f"range proof too short for [{start}, {end}) in {size}")
            return found
        if start <= lo and hi <= end:
            return _buffer_root(b"".join(leaves[lo - start : hi - start]))
        mid = lo + _largest_power_of_two_below(hi - lo)
        return sha256(_NODE_PREFIX + walk(lo, mid) + walk(mid, hi)).digest()

    got = walk(0, size)
    if next(hashes, None) is not None:
        raise MalformedProofError(f"range proof too long for [{start}, {end}) in {size}")
    return got


def verify_range(leaf_hashes: Sequence[bytes], start: int, size: int,
                 proof: Sequence[bytes] | None, root: bytes) -> None:
    """Verify that ``leaf_hashes`` are leaves ``start ..`` of the tree of ``size`` with ``root``.

    Returns ``None``; raises :class:`MalformedProofError` or :class:`RootMismatchError`.
    """
    expected = _check_hash(root, "root")
    got = root_from_range(leaf_hashes, start, size, proof)
    if got != expected:
        raise RootMismatchError(
            f"range [{start}, {start + len(leaf_hashes)}) in size {size} gives root "
            f"{got.hex()}, expected {expected.hex()}")


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes] | None,
) -> None:
    """Verify that the tree of ``new_size`` leaves (``new_root``) extends the tree of
    ``old_size`` leaves (``old_root``).

    Follows RFC 9162 section 2.1.4.2 (as implemented by transparency-dev/merkle).
    Stricter on one point: for ``old_size == 0`` the old root must be
    :data:`EMPTY_ROOT`, the only root a tree of size 0 has. Returns ``None``;
    raises :class:`MalformedProofError` or :class:`RootMismatchError`.
    """
    _check_size(old_size, "old size")
    _check_size(new_size, "new size")
    old = _check_hash(old_root, "old root")
    new = _check_hash(new_root, "new root")
    path = _check_proof(proof)
    if new_size < old_size:
        raise MalformedProofError(f"new size {new_size} is smaller than old size {old_size}")
    if old_size == new_size:
        if path:
            raise MalformedProofError("old size equals new size but the proof is not empty")
        if old != new:
            raise RootMismatchError(f"roots differ for the same size {old_size}")
        return
    if old_size == 0:
        if path:
            raise MalformedProofError(f"proof from size 0 must be empty, got {len(path)} hashes")
        if old != EMPTY_ROOT:
            raise RootMismatchError("old root of an empty tree must be SHA-256 of the empty string")
        return
    if not path:
        raise MalformedProofError(f"empty consistency proof from size {old_size} to {new_size}")

    # The proof is, after an optional leading seed, a suffix of the inclusion proof
    # of leaf old_size - 1 in the new tree, starting at the level ``shift`` where
    # the old tree's rightmost complete subtree sits.
    inner, border = _decompose_inclusion(old_size - 1, new_size)
    shift = (old_size & -old_size).bit_length() - 1  # trailing zero bits of old_size
    inner -= shift
    if old_size == 1 << shift:
        seed, rest = old, path  # the old tree is itself that complete subtree
    else:
        seed, rest = path[0], path[1:]
    if len(rest) != inner + border:
        raise MalformedProofError(
            f"consistency proof has {len(path)} hashes, expected "
            f"{len(path) - len(rest) + inner + border} from size {old_size} to {new_size}"
        )
    mask = (old_size - 1) >> shift
    got_old = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if got_old != old:
        raise RootMismatchError(
            f"consistency proof gives old root {got_old.hex()}, expected {old.hex()}"
        )
    got_new = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if got_new != new:
        raise RootMismatchError(
            f"consistency proof gives new root {got_new.hex()}, expected {new.hex()}"
        )
