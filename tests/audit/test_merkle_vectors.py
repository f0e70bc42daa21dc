"""RFC 6962 Merkle hashing and proofs: transparency-dev vectors, known roots, properties.

No database, no Django: the module under test is Django-free.
"""

from __future__ import annotations

import base64
import json
import random
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest

from audit.ledger import merkle
from audit.ledger.merkle import (
    EMPTY_ROOT,
    MalformedProofError,
    MerkleTree,
    ProofError,
    RootMismatchError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_from_entries,
    verify_consistency,
    verify_inclusion,
    verify_log,
)

VECTORS = Path(__file__).resolve().parents[1] / "fixtures" / "merkle"
INCLUSION_FILES = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY_FILES = sorted((VECTORS / "consistency").rglob("*.json"))

# The reference tree of the vectors (and of the RFC 6962 test suite of
# certificate-transparency): 8 leaves, and the known root of each prefix.
REFERENCE_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
REFERENCE_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
REFERENCE_HASHES = [leaf_hash(d) for d in REFERENCE_LEAVES]


def _b64(value: str) -> bytes:
    return base64.b64decode(value) if value else b""


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(h) for h in value or []]


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# --- reference implementation: the RFC 9162 recursions, written literally ---------


def _ref_mth(hashes: list[bytes]) -> bytes:
    n = len(hashes)
    if n == 0:
        return sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(_ref_mth(hashes[:k]), _ref_mth(hashes[k:]))


def _ref_path(m: int, hashes: list[bytes]) -> list[bytes]:
    n = len(hashes)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*_ref_path(m, hashes[:k]), _ref_mth(hashes[k:])]
    return [*_ref_path(m - k, hashes[k:]), _ref_mth(hashes[:k])]


def _ref_subproof(m: int, hashes: list[bytes], b: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if b else [_ref_mth(hashes)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_ref_subproof(m, hashes[:k], b), _ref_mth(hashes[k:])]
    return [*_ref_subproof(m - k, hashes[k:], False), _ref_mth(hashes[:k])]


def _random_hashes(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [leaf_hash(rng.randbytes(rng.randrange(0, 40))) for _ in range(n)]


def _flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- transparency-dev vectors ---------------------------------------------------


def test_vector_files_are_all_present() -> None:
    assert len(INCLUSION_FILES) == 53
    assert len(CONSISTENCY_FILES) == 43


@pytest.mark.parametrize("path", INCLUSION_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_inclusion_vector(path: Path) -> None:
    v = _load(path)
    args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v["proof"]), _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        assert verify_inclusion(*args) is None


@pytest.mark.parametrize("path", CONSISTENCY_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_consistency_vector(path: Path) -> None:
    v = _load(path)
    args = (v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), _proof(v["proof"]))
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        assert verify_consistency(*args) is None


@pytest.mark.parametrize(
    "path",
    [p for p in INCLUSION_FILES if p.stem == "happy-path"],
    ids=lambda p: p.parent.name,
)
def test_generated_inclusion_proof_equals_vector(path: Path) -> None:
    v = _load(path)
    got = inclusion_proof(REFERENCE_HASHES, v["leafIdx"], v["treeSize"])
    assert got == _proof(v["proof"])
    assert REFERENCE_HASHES[v["leafIdx"]] == _b64(v["leafHash"])


@pytest.mark.parametrize(
    "path",
    [p for p in CONSISTENCY_FILES if p.stem == "happy-path"],
    ids=lambda p: p.parent.name,
)
def test_generated_consistency_proof_equals_vector(path: Path) -> None:
    v = _load(path)
    assert consistency_proof(REFERENCE_HASHES, v["size1"], v["size2"]) == _proof(v["proof"])


# --- known answers ----------------------------------------------------------------


def test_empty_root_is_sha256_of_empty_string() -> None:
    expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root([]) == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == expected
    assert MerkleTree().root() == EMPTY_ROOT
    assert root_from_entries([]) == EMPTY_ROOT


def test_leaf_and_node_hash_prefixes() -> None:
    assert leaf_hash(b"abc") == sha256(b"\x00abc").digest()
    assert node_hash(b"l" * 32, b"r" * 32) == sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_reference_tree_roots(size: int) -> None:
    expected = bytes.fromhex(REFERENCE_ROOTS[size - 1])
    assert root(REFERENCE_HASHES[:size]) == expected
    assert MerkleTree(REFERENCE_HASHES).root(size) == expected
    assert root_from_entries(REFERENCE_LEAVES[:size]) == expected


# --- agreement with the literal RFC recursion ----------------------------------------


@pytest.mark.parametrize("size", range(1, 40))
def test_proofs_match_rfc_recursion(size: int) -> None:
    hashes = _random_hashes(size, seed=size)
    tree = MerkleTree(hashes)
    assert tree.root() == _ref_mth(hashes)
    for index in range(size):
        assert tree.inclusion_proof(index) == _ref_path(index, hashes)
    for old in range(1, size):
        assert tree.consistency_proof(old) == _ref_subproof(old, hashes, True)


def test_tree_built_incrementally_equals_bulk() -> None:
    hashes = _random_hashes(300, seed=7)
    incremental = MerkleTree()
    for i, h in enumerate(hashes):
        incremental.append(h)
        assert incremental.root() == _ref_mth(hashes[: i + 1])
    in_chunks = MerkleTree(hashes[:13])
    in_chunks.extend(hashes[13:101])
    in_chunks.extend(b"".join(hashes[101:]))
    bulk = MerkleTree(b"".join(hashes))
    for size in (0, 1, 13, 64, 101, 255, 256, 257, 300):
        assert incremental.root(size) == in_chunks.root(size) == bulk.root(size)


@pytest.mark.parametrize("size", [0, 1, 2, 4095, 4096, 4097, 8191, 8192, 8193, 3 * 4096 + 5])
def test_root_from_entries_across_batch_boundaries(size: int) -> None:
    rng = random.Random(size)
    entries = [rng.randbytes(8) for _ in range(size)]
    expected = root([leaf_hash(e) for e in entries])
    assert root_from_entries(iter(entries)) == expected
    assert MerkleTree.from_entries(entries).root() == expected
    verify_log(iter(entries), size, expected)


def test_verify_log_rejects_tampering() -> None:
    entries = [bytes([i]) * 10 for i in range(100)]
    good = root_from_entries(entries)
    tampered = [*entries[:50], b"x" + entries[50][1:], *entries[51:]]
    with pytest.raises(RootMismatchError):
        verify_log(tampered, 100, good)
    with pytest.raises(MalformedProofError):
        verify_log(entries[:99], 100, good)
    with pytest.raises(MalformedProofError):
        verify_log(entries, 100, good[:31])


# --- properties: every generated proof verifies, every bit flip breaks it ------------

PROPERTY_SIZES = sorted(
    {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33, 255, 256, 257, 300}
    | set(random.Random(2024).sample(range(1, 301), 15))
)


@pytest.mark.parametrize("size", PROPERTY_SIZES)
def test_every_inclusion_proof_verifies_and_bit_flips_break_it(size: int) -> None:
    hashes = _random_hashes(size, seed=1000 + size)
    tree = MerkleTree(hashes)
    tree_root = tree.root()
    for index in range(size):
        verify_inclusion(hashes[index], index, size, tree.inclusion_proof(index), tree_root)
    rng = random.Random(size)
    for index in {0, size - 1, rng.randrange(size)}:
        proof = tree.inclusion_proof(index)
        for i in range(len(proof)):
            for bit in range(256):
                bad = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
                with pytest.raises(RootMismatchError):
                    verify_inclusion(hashes[index], index, size, bad, tree_root)
        for bit in range(256):
            with pytest.raises(RootMismatchError):
                verify_inclusion(_flip(hashes[index], bit), index, size, proof, tree_root)
            with pytest.raises(RootMismatchError):
                verify_inclusion(hashes[index], index, size, proof, _flip(tree_root, bit))
        with pytest.raises(MalformedProofError):
            verify_inclusion(
                hashes[index], index, size, [*proof, proof[-1] if proof else hashes[0]], tree_root
            )
        if proof:
            with pytest.raises(MalformedProofError):
                verify_inclusion(hashes[index], index, size, proof[:-1], tree_root)
            with pytest.raises(MalformedProofError):
                verify_inclusion(hashes[index], index, size, [proof[0][:31], *proof[1:]], tree_root)
        with pytest.raises(MalformedProofError):
            verify_inclusion(hashes[index], size, size, proof, tree_root)


@pytest.mark.parametrize("size", PROPERTY_SIZES)
def test_every_consistency_proof_verifies_and_bit_flips_break_it(size: int) -> None:
    hashes = _random_hashes(size, seed=2000 + size)
    tree = MerkleTree(hashes)
    new_root = tree.root()
    for old in range(0, size + 1):
        verify_consistency(old, size, tree.root(old), new_root, tree.consistency_proof(old))
    rng = random.Random(size)
    for old in {1, size - 1, rng.randrange(1, size + 1)} - {0, size}:
        proof = tree.consistency_proof(old)
        old_root = tree.root(old)
        for i in range(len(proof)):
            for bit in range(256):
                bad = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
                with pytest.raises(RootMismatchError):
                    verify_consistency(old, size, old_root, new_root, bad)
        for bit in range(256):
            with pytest.raises(RootMismatchError):
                verify_consistency(old, size, _flip(old_root, bit), new_root, proof)
            with pytest.raises(RootMismatchError):
                verify_consistency(old, size, old_root, _flip(new_root, bit), proof)
        with pytest.raises(MalformedProofError):
            verify_consistency(old, size, old_root, new_root, proof[:-1])
        with pytest.raises(MalformedProofError):
            verify_consistency(old, size, old_root, new_root, [*proof, proof[0]])
        with pytest.raises(MalformedProofError):
            verify_consistency(size, old, new_root, old_root, proof)


# --- edge cases -----------------------------------------------------------------------


def test_consistency_edge_cases() -> None:
    tree = MerkleTree(_random_hashes(10, seed=3))
    assert tree.consistency_proof(0) == []
    assert tree.consistency_proof(10) == []
    verify_consistency(0, 10, EMPTY_ROOT, tree.root(), [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, None)
    with pytest.raises(RootMismatchError):
        verify_consistency(0, 10, tree.root(), tree.root(), [])
    with pytest.raises(MalformedProofError):
        verify_consistency(0, 10, EMPTY_ROOT, tree.root(), [tree.root()])
    with pytest.raises(RootMismatchError):
        verify_consistency(10, 10, tree.root(5), tree.root(), [])
    with pytest.raises(MalformedProofError):
        verify_consistency(5, 10, tree.root(5), tree.root(), [])
    with pytest.raises(MalformedProofError):
        verify_consistency(-1, 10, EMPTY_ROOT, tree.root(), [])
    with pytest.raises(MalformedProofError):
        verify_consistency(1, 1 << 64, EMPTY_ROOT, tree.root(), [])


def test_inclusion_edge_cases() -> None:
    hashes = _random_hashes(5, seed=4)
    tree = MerkleTree(hashes)
    with pytest.raises(MalformedProofError):
        verify_inclusion(hashes[0], 0, 0, [], EMPTY_ROOT)
    with pytest.raises(MalformedProofError):
        verify_inclusion(hashes[0], -1, 5, tree.inclusion_proof(0), tree.root())
    with pytest.raises(MalformedProofError):
        verify_inclusion(hashes[0], 0, 5, tree.inclusion_proof(0), tree.root()[:16])
    with pytest.raises(MalformedProofError):
        verify_inclusion("not bytes", 0, 5, tree.inclusion_proof(0), tree.root())  # type: ignore[arg-type]
    with pytest.raises(MalformedProofError):
        verify_inclusion(hashes[0], True, 5, tree.inclusion_proof(0), tree.root())


def test_generation_rejects_bad_arguments() -> None:
    tree = MerkleTree(_random_hashes(5, seed=5))
    with pytest.raises(ValueError):
        tree.inclusion_proof(5)
    with pytest.raises(ValueError):
        tree.inclusion_proof(0, 6)
    with pytest.raises(ValueError):
        tree.consistency_proof(6)
    with pytest.raises(ValueError):
        tree.consistency_proof(4, 3)
    with pytest.raises(ValueError):
        MerkleTree([b"short"])
    with pytest.raises(ValueError):
        MerkleTree(b"x" * 33)
    with pytest.raises(ValueError):
        root([b"x" * 31])
    assert tree.size == len(tree) == 5


def test_historical_proofs_from_a_larger_tree() -> None:
    hashes = _random_hashes(100, seed=6)
    big = MerkleTree(hashes)
    for size in (1, 37, 64, 99):
        small = MerkleTree(hashes[:size])
        assert big.root(size) == small.root()
        for index in (0, size // 2, size - 1):
            assert big.inclusion_proof(index, size) == small.inclusion_proof(index)
        for old in (1, size // 2 or 1, size):
            assert big.consistency_proof(old, size) == small.consistency_proof(old)
    assert merkle.HASH_SIZE == 32
