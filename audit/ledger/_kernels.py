"""Compiled SHA-256 loops of the ledger (imported by :mod:`audit.ledger.native` only).

Each loop calls OpenSSL's one-block-at-a-time SHA-256 (``SHA256_Init`` /
``SHA256_Update`` / ``SHA256_Final``, the same code and CPU extensions hashlib
uses) once per message, with no Python in between. The symbols are resolved by
name when the compiled code is linked, so the machine code can be cached on disk
(``cache=True``): a new process loads it in milliseconds instead of compiling.

Import this module only after :func:`audit.ledger.native.load` has made the
library's symbols visible to the JIT linker.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types

_CTX_BYTES = 128  # sizeof(SHA256_CTX) is 112 on every OpenSSL; keep headroom

_init = types.ExternalFunction("SHA256_Init", types.int32(types.voidptr))
_update = types.ExternalFunction("SHA256_Update",
                                 types.int32(types.voidptr, types.voidptr, types.uintp))
_final = types.ExternalFunction("SHA256_Final", types.int32(types.voidptr, types.voidptr))


@nb.njit(cache=True, nogil=True)
def message_hashes(data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """``out[32*i : 32*i+32] = SHA-256(data[offsets[i] : offsets[i+1]])``."""
    ctx = np.empty(_CTX_BYTES, np.uint8)
    c = ctx.ctypes.data
    base = data.ctypes.data
    dst = out.ctypes.data
    for i in range(offsets.shape[0] - 1):
        _init(c)
        _update(c, base + offsets[i], offsets[i + 1] - offsets[i])
        _final(dst + 32 * i, c)


@nb.njit(cache=True, nogil=True)
def node_hashes(pairs: np.ndarray, count: int, out: np.ndarray) -> None:
    """``out[32*i : 32*i+32] = SHA-256(0x01 || pairs[64*i : 64*i+64])`` for ``i < count``."""
    ctx = np.empty(_CTX_BYTES, np.uint8)
    prefix = np.ones(1, np.uint8)
    c = ctx.ctypes.data
    p = prefix.ctypes.data
    src = pairs.ctypes.data
    dst = out.ctypes.data
    for i in range(count):
        _init(c)
        _update(c, p, 1)
        _update(c, src + 64 * i, 64)
        _final(dst + 32 * i, c)


@nb.njit(cache=True, nogil=True)
def messages_root(data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """``out[:32]`` = RFC 6962 root over leaves ``SHA-256(data[offsets[i] : offsets[i+1]])``.

    Each message already carries its 0x00 leaf prefix. Level by level, in place: the
    hashes of one level sit pairwise in 65-byte rows ``0x01 || left || right``, so a
    parent is one contiguous SHA-256 input; an odd last node moves up unchanged,
    which yields exactly the RFC 6962 shape.
    """
    count = offsets.shape[0] - 1
    rows = np.ones(((count + 1) // 2, 65), np.uint8)
    ctx = np.empty(_CTX_BYTES, np.uint8)
    c = ctx.ctypes.data
    base = data.ctypes.data
    r = rows.ctypes.data
    for i in range(count):
        _init(c)
        _update(c, base + offsets[i], offsets[i + 1] - offsets[i])
        _final(r + 65 * (i >> 1) + 1 + 32 * (i & 1), c)
    while count > 1:
        pairs = count >> 1
        for i in range(pairs):
            _init(c)
            _update(c, r + 65 * i, 65)
            _final(r + 65 * (i >> 1) + 1 + 32 * (i & 1), c)
        if count & 1:
            src = 1 + 32 * ((count - 1) & 1)
            dst = 1 + 32 * (pairs & 1)
            rows[pairs >> 1, dst:dst + 32] = rows[(count - 1) >> 1, src:src + 32]
        count = pairs + (count & 1)
    out[:32] = rows[0, 1:33]
