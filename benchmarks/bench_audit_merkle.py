"""Benchmark of the audit ledger's Merkle core on 1,000,000 entries (no Django).

Run: ``.venv/bin/python benchmarks/bench_audit_merkle.py [--entries N] [--payload BYTES]``

Prints one ``BENCH <name> <value>`` line per figure (medians):

* ``audit_verify_1m_seconds``: full recomputation of the root from the raw entries
  (``root_from_entries``: one leaf hash per entry plus one node hash per leaf);
* ``audit_sha256_1m_seconds``: the limit, SHA-256 of the same bytes concatenated,
  in one pass (the concatenation itself is not timed);
* ``audit_verify_vs_sha256_ratio``: the two above, ours / limit;
* ``audit_proof_ms``: an inclusion proof plus a consistency proof on the 1 M tree;
* ``audit_tree_build_1m_seconds``: building the ``MerkleTree`` (every cached level)
  over the 1 M leaf hashes.

* ``audit_verify_1m_hashlib_seconds``: the same recomputation with the compiled
  path switched off (one ``hashlib`` call per hash), for comparison;
* ``audit_native_load_seconds``: what the first large verification in a new process
  pays to load the compiled loops (numba's on-disk cache, after the first run ever).

Note on the ratio: even in C the recomputation hashes about twice the blocks of
the one-pass limit (each 200-byte leaf is 4 SHA-256 blocks instead of 3.1, and
each node 2 more blocks), so the floor is about 1.9x. In Python each ``hashlib``
call adds a fixed ~0.3 µs on OpenSSL 3, which dominates on CPUs with SHA-NI; the
ledger therefore hashes large batches in compiled loops over the same OpenSSL
functions (``audit.ledger.native``).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.ledger import native  # after the sys.path set-up: the script runs standalone
from audit.ledger.merkle import (
    MerkleTree,
    leaf_hash,
    root_from_entries,
    verify_consistency,
    verify_inclusion,
)


def _median_seconds(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Return the median wall time of ``repeat`` calls of ``fn`` and its last result."""
    times = []
    result: object = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    """Build the entries, time each figure, print the BENCH lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--payload", type=int, default=200, help="bytes per entry")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, payload = args.entries, args.payload

    blob = os.urandom(n * payload)
    entries = [blob[i : i + payload] for i in range(0, n * payload, payload)]

    start = time.perf_counter()
    if not native.available():
        sys.exit("the compiled ledger hashing is not available (numba or libcrypto missing)")
    native.entries_root(entries[:2])
    load_s = time.perf_counter() - start

    verify_s, log_root = _median_seconds(lambda: root_from_entries(entries), args.repeat)
    native._kernels, saved = None, native._kernels  # the hashlib path, for comparison
    hashlib_s, hashlib_root = _median_seconds(lambda: root_from_entries(entries), 1)
    native._kernels = saved
    assert hashlib_root == log_root, "compiled and hashlib roots differ"
    limit_s, _ = _median_seconds(lambda: sha256(blob).digest(), args.repeat)

    prefix = b"\x00"
    leaf_hashes = [sha256(prefix + e).digest() for e in entries]
    build_s, tree = _median_seconds(lambda: MerkleTree(leaf_hashes), args.repeat)
    assert isinstance(tree, MerkleTree)
    assert tree.root() == log_root, "tree root and streamed root disagree"

    rng = random.Random(42)
    proof_times = []
    for _ in range(101):
        index = rng.randrange(n)
        old_size = rng.randrange(1, n)
        start = time.perf_counter()
        inclusion = tree.inclusion_proof(index)
        consistency = tree.consistency_proof(old_size)
        proof_times.append(time.perf_counter() - start)
        verify_inclusion(leaf_hashes[index], index, n, inclusion, log_root)
        verify_consistency(old_size, n, tree.root(old_size), log_root, consistency)
    assert leaf_hash(entries[0]) == leaf_hashes[0]

    print(f"BENCH audit_verify_1m_seconds {verify_s:.4f}")
    print(f"BENCH audit_sha256_1m_seconds {limit_s:.4f}")
    print(f"BENCH audit_verify_vs_sha256_ratio {verify_s / limit_s:.2f}")
    print(f"BENCH audit_proof_ms {statistics.median(proof_times) * 1000:.4f}")
    print(f"BENCH audit_tree_build_1m_seconds {build_s:.4f}")
    print(f"BENCH audit_verify_1m_hashlib_seconds {hashlib_s:.4f}")
    print(f"BENCH audit_native_load_seconds {load_s:.3f}")


if __name__ == "__main__":
    main()
