"""Batch SHA-256 for large logs: many messages hashed in one compiled loop.

Python pays about 0.3 µs of fixed cost per ``hashlib`` call, more than the hash
of a 200-byte entry itself, so a million-entry log verifies ~8x slower than
SHA-256 streams the same bytes. Here the loop over messages is compiled (numba)
and calls the libcrypto that Python's own ``hashlib`` is linked against, so
every digest is the same OpenSSL code, minus the per-call overhead
(``benchmarks/bench_audit_merkle.py``; ADR 0004).

Optional by design: :func:`available` is false when numba or a libcrypto
exporting the SHA-256 functions is missing (or ``D2R_LEDGER_NATIVE=0``), and the
callers in :mod:`audit.ledger.merkle` then stay on ``hashlib``. Both paths give
identical bytes (tests compare them). Callers ask :func:`worth` first, so small
jobs never load the compiler.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["LOAD_BATCH", "MIN_BATCH", "available", "entries_root", "leaf_hashes",
           "node_hashes", "worth"]

MIN_BATCH = 4096
"""Below this many messages a batch stays on hashlib (the call costs outweigh the gain)."""

LOAD_BATCH = 1 << 19
"""A job this large loads the compiled loops (~0.2 s from numba's cache, ~2 s to compile
on the first run ever): below it, hashlib is done before they would be loaded."""

_SYMBOLS = ("SHA256_Init", "SHA256_Update", "SHA256_Final")
_kernels: ModuleType | None = None
_tried = False


def _libcrypto_path() -> str | None:
    """The libcrypto that ``hashlib`` uses (from this process's maps), else the system one."""
    import _hashlib  # noqa: F401 - loads libcrypto when hashlib is linked dynamically

    try:
        for line in Path("/proc/self/maps").read_text().splitlines():
            path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
            if "/libcrypto" in path and path.startswith("/"):
                return path
    except OSError:
        pass
    return ctypes.util.find_library("crypto")


def _load() -> ModuleType | None:
    if os.environ.get("D2R_LEDGER_NATIVE", "1") == "0":
        return None
    try:
        import llvmlite.binding as llvm
        import numba  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        return None
    path = _libcrypto_path()
    if path is None:
        return None
    try:
        library = ctypes.CDLL(path)
        for name in _SYMBOLS:
            getattr(library, name)
        llvm.load_library_permanently(path)
    except (OSError, AttributeError, RuntimeError):
        return None
    try:
        from audit.ledger import _kernels
    except Exception:  # e.g. no writable numba cache: stay on hashlib
        logging.getLogger(__name__).warning("compiled ledger hashing unavailable",
                                            exc_info=True)
        return None
    return _kernels


def worth(count: int) -> bool:
    """Whether hashing ``count`` messages should take the compiled path.

    Yes for any batch of :data:`MIN_BATCH` once this process has loaded it; a process
    only loads it for a job of :data:`LOAD_BATCH` or more (so the web process, which
    signs small increments, never pays for the compiler).
    """
    if _kernels is not None:
        return count >= MIN_BATCH
    return count >= LOAD_BATCH and available()


def available() -> bool:
    """Whether the compiled path can be used in this process (loads it on first call)."""
    global _kernels, _tried
    if not _tried:
        _tried = True
        _kernels = _load()
    return _kernels is not None


def _prefixed(messages: Sequence[bytes], prefix: bytes) -> tuple[Any, Any]:
    """One buffer ``prefix m0 prefix m1 …`` and the offsets of each ``prefix mi`` in it."""
    import numpy as np

    offsets = np.zeros(len(messages) + 1, dtype=np.int64)
    lengths = np.fromiter(map(len, messages), dtype=np.int64, count=len(messages))
    np.cumsum(lengths + len(prefix), out=offsets[1:])
    # One copy: joining behind an empty first item puts the prefix before every message.
    data = prefix.join([b"", *messages])
    if not data:
        data = b"\0"  # numba needs a non-empty buffer; no message reads it
    return np.frombuffer(data, dtype=np.uint8), offsets


def leaf_hashes(entries: Sequence[bytes]) -> bytes:
    """RFC 6962 leaf hashes ``SHA-256(0x00 || e)`` of ``entries``, concatenated."""
    import numpy as np

    if not available():
        raise RuntimeError("native hashing is not available")
    data, offsets = _prefixed(entries, b"\x00")
    out = np.empty(32 * len(entries), dtype=np.uint8)
    _kernels.message_hashes(data, offsets, out)  # each message carries its 0x00 prefix
    return out.tobytes()


def entries_root(entries: Sequence[bytes]) -> bytes:
    """The RFC 6962 root over raw ``entries`` (at least one), in one compiled call."""
    import numpy as np

    if not available():
        raise RuntimeError("native hashing is not available")
    if not entries:
        raise ValueError("entries_root needs at least one entry")
    data, offsets = _prefixed(entries, b"\x00")
    out = np.empty(32, dtype=np.uint8)
    _kernels.messages_root(data, offsets, out)
    return out.tobytes()


def node_hashes(level: bytes | bytearray | memoryview) -> bytes:
    """Parents ``SHA-256(0x01 || left || right)`` of each pair of 32-byte hashes in ``level``.

    ``level`` holds an even number of hashes back to back; returns half as many.
    """
    import numpy as np

    if not available():
        raise RuntimeError("native hashing is not available")
    pairs = np.frombuffer(level, dtype=np.uint8)
    if len(pairs) % 64:
        raise ValueError("node_hashes needs whole pairs of 32-byte hashes")
    count = len(pairs) // 64
    out = np.empty(32 * count, dtype=np.uint8)
    if count:
        _kernels.node_hashes(pairs, count, out)
    return out.tobytes()
