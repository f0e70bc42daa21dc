"""Validate a scan file in one streaming pass; optionally hand each chunk to a writer.

Supported: LAS and LAZ (laspy + lazrs, any version 1.0-1.4, COPC is LAZ), LAS wrapped
in gzip or zstd, PLY (ascii, binary little/big endian), E57 (`inspections.pointcloud.e57`,
through pye57; loaded only for E57 uploads). Every failure is a
`Rejected(reason, detail)` with a stable reason code; nothing here imports Django.

Limits against decompression bombs are checked twice: up front from the header
(declared points x record size against the absolute and ratio limits) and while
decompressing (bytes produced), so a lying header cannot get past either.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import laspy
import numpy as np

CHUNK_POINTS = 500_000
MAGIC = {
    "las": b"LASF",
    "laz": b"LASF",
    "las+gzip": b"\x1f\x8b",
    "las+zstd": b"\x28\xb5\x2f\xfd",
    "ply": b"ply",
    "e57": b"ASTM-E57",
}
MAX_ABS_COORDINATE = 1e9  # metres; geocentric coordinates are ~6.4e6
MIN_SCALE, MAX_SCALE = 1e-10, 1.0


class Rejected(Exception):
    """The file is not an acceptable scan; `reason` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    max_points: int = 2_000_000_000
    max_decompressed_bytes: int = 64 * 1024**3
    max_ratio: int = 100


@dataclass
class Report:
    """What validation learned about a good file."""

    format: str
    point_count: int
    mins: list[float]
    maxs: list[float]
    version: str = ""
    point_format: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def sniff(head: bytes) -> str | None:
    """The container a file's first bytes announce (`las` stands for LAS and LAZ)."""
    for name, magic in (("las", b"LASF"), ("las+gzip", b"\x1f\x8b"),
                        ("las+zstd", b"\x28\xb5\x2f\xfd"), ("ply", b"ply"),
                        ("e57", b"ASTM-E57")):
        if head.startswith(magic):
            return name
    return None


class _ForwardReader(io.RawIOBase):
    """Forward-only view of a decompressor that counts and caps the bytes produced."""

    def __init__(self, source: Any, cap: int, cap_detail: str) -> None:
        self.source = source
        self.cap = cap
        self.cap_detail = cap_detail
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self.source.read(len(buffer))
        except (EOFError, gzip.BadGzipFile, OSError) as exc:
            raise Rejected("truncated", f"Compressed stream ends early or is corrupt: {exc}") \
                from exc
        except Exception as exc:  # zstandard.ZstdError has no common base we import
            raise Rejected("truncated", f"Compressed stream is corrupt: {exc}") from exc
        self.produced += len(data)
        if self.produced > self.cap:
            raise Rejected("decompression-bomb", self.cap_detail)
        view = memoryview(buffer)
        view[: len(data)] = data
        return len(data)


def _decompressed(raw: BinaryIO, encoding: str, size: int, limits: Limits) -> io.BufferedReader:
    cap = min(limits.max_decompressed_bytes, max(size, 1) * limits.max_ratio)
    detail = (f"Decompressed data exceeds {cap} bytes (limits: {limits.max_decompressed_bytes}"
              f" bytes, {limits.max_ratio}x the {size}-byte upload).")
    if encoding == "las+gzip":
        source: Any = gzip.GzipFile(fileobj=raw, mode="rb")
    else:
        import zstandard

        source = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return io.BufferedReader(_ForwardReader(source, cap, detail), buffer_size=1024 * 1024)


def _check_number(name: str, values: Any, *, positive: bool = False) -> None:
    array = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(array)):
        raise Rejected("non-finite-values", f"Header {name} is not finite: {array.tolist()}.")
    if positive and not np.all((array >= MIN_SCALE) & (array <= MAX_SCALE)):
        raise Rejected("invalid-scale",
                       f"Header {name} {array.tolist()} is outside [{MIN_SCALE}, {MAX_SCALE}].")
    if np.any(np.abs(array) > MAX_ABS_COORDINATE):
        raise Rejected("out-of-range", f"Header {name} {array.tolist()} is beyond ±1e9 m.")


def _validate_las(source: BinaryIO, *, compressed_size: int, wrapped: bool, encoding: str,
                  limits: Limits, on_points: Callable[[Any, Any], None] | None) -> Report:
    try:
        reader = laspy.open(source, closefd=False)
    except Rejected:
        raise
    except Exception as exc:  # laspy raises several types for a bad header
        raise Rejected("invalid-header", f"Cannot read the LAS header: {exc}") from exc
    with reader:
        header = reader.header
        if header.are_points_compressed != (encoding == "laz"):
            actual = "LAZ" if header.are_points_compressed else "uncompressed LAS"
            raise Rejected("encoding-mismatch",
                           f"Declared {encoding!r} but the file holds {actual} points.")
        count = int(header.point_count)
        if count == 0:
            raise Rejected("empty-cloud", "The header declares zero points.")
        if count > limits.max_points:
            raise Rejected("too-many-points",
                           f"{count} points declared; the limit is {limits.max_points}.")
        record = header.point_format.size
        declared_bytes = count * record
        if declared_bytes > limits.max_decompressed_bytes or (
            not wrapped and header.are_points_compressed
            and declared_bytes > compressed_size * limits.max_ratio
        ):
            raise Rejected("decompression-bomb",
                           f"{count} points x {record} bytes = {declared_bytes} bytes from a "
                           f"{compressed_size}-byte file exceeds the limits.")
        _check_number("scales", header.scales, positive=True)
        _check_number("offsets", header.offsets)
        _check_number("mins", header.mins)
        _check_number("maxs", header.maxs)
        if np.any(np.asarray(header.mins) > np.asarray(header.maxs)):
            raise Rejected("invalid-bounds",
                           f"Header mins {list(header.mins)} exceed maxs {list(header.maxs)}.")
        tolerance = np.asarray(header.scales) * 1.0 + 1e-9
        lo, hi = np.asarray(header.mins) - tolerance, np.asarray(header.maxs) + tolerance
        seen = 0
        mins = np.full(3, np.inf)
        maxs = np.full(3, -np.inf)
        chunks = reader.chunk_iterator(CHUNK_POINTS)
        while True:
            try:
                points = next(chunks, None)
            except Rejected:
                raise
            except Exception as exc:  # laspy/lazrs on a short or corrupt point block
                raise Rejected("truncated", f"Point data ends or breaks after {seen} of "
                                            f"{count} points: {exc}") from exc
            if points is None or len(points) == 0:
                break
            n = len(points)
            xyz = np.stack([np.asarray(points.x), np.asarray(points.y),
                            np.asarray(points.z)], axis=1)
            if not np.all(np.isfinite(xyz)):
                raise Rejected("non-finite-values", "Coordinates are NaN or infinite.")
            mins = np.minimum(mins, xyz.min(axis=0))
            maxs = np.maximum(maxs, xyz.max(axis=0))
            seen += n
            if on_points is not None:
                on_points(header, points)
        if seen < count:
            raise Rejected("truncated", f"Only {seen} of the {count} declared points are present.")
        if np.any(mins < lo) or np.any(maxs > hi):
            raise Rejected("out-of-bounds",
                           f"Points span {mins.tolist()}-{maxs.tolist()}, outside the header "
                           f"bounds {list(header.mins)}-{list(header.maxs)}.")
        if not header.are_points_compressed:
            _check_trailing(source, header, count, wrapped, compressed_size)
        return Report(format="laz" if header.are_points_compressed else "las",
                      point_count=seen, mins=mins.tolist(), maxs=maxs.tolist(),
                      version=str(header.version), point_format=header.point_format.id,
                      extra={"scales": list(map(float, header.scales)),
                             "offsets": list(map(float, header.offsets))})


def _check_trailing(source: BinaryIO, header: Any, count: int, wrapped: bool,
                    file_size: int) -> None:
    """More point records than the header declares (beyond any EVLRs) is a mismatch."""
    end_of_points = header.offset_to_point_data + count * header.point_format.size
    evlr_start = getattr(header, "start_of_first_evlr", 0) or 0
    if evlr_start:
        return
    if wrapped:
        extra = len(source.read(header.point_format.size))
    else:
        extra = max(0, file_size - end_of_points)
    if extra >= header.point_format.size:
        raise Rejected("point-count-mismatch",
                       f"The file holds more point records than the {count} its header declares.")


_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2",
              "int16": "i2", "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4",
              "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4", "double": "f8",
              "float64": "f8"}


def _validate_ply(source: BinaryIO, *, limits: Limits,
                  on_xyz: Callable[[np.ndarray], None] | None) -> Report:
    lines: list[str] = []
    while True:
        line = source.readline(4096)
        if not line:
            raise Rejected("truncated", "The PLY header has no end_header line.")
        text = line.decode("ascii", errors="replace").strip()
        lines.append(text)
        if text == "end_header":
            break
        if len(lines) > 1000:
            raise Rejected("invalid-header", "The PLY header is longer than 1000 lines.")
    fmt = next((ln.split()[1] for ln in lines if ln.startswith("format ")), None)
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise Rejected("invalid-header", f"Unsupported PLY format {fmt!r}.")
    count, properties, in_vertex = None, [], False
    for ln in lines:
        parts = ln.split()
        if parts[:1] == ["element"]:
            in_vertex = parts[1] == "vertex"
            if in_vertex:
                if len(parts) != 3 or not re.fullmatch(r"\d+", parts[2]):
                    raise Rejected("invalid-header", f"Bad vertex element line {ln!r}.")
                count = int(parts[2])
        elif parts[:1] == ["property"] and in_vertex:
            if parts[1] == "list" or parts[1] not in _PLY_TYPES:
                raise Rejected("invalid-header", f"Unsupported vertex property {ln!r}.")
            properties.append((parts[2], _PLY_TYPES[parts[1]]))
    names = [name for name, _ in properties]
    if count is None or not {"x", "y", "z"} <= set(names):
        raise Rejected("invalid-header", "The PLY file has no vertex element with x, y, z.")
    if count == 0:
        raise Rejected("empty-cloud", "The header declares zero vertices.")
    if count > limits.max_points:
        raise Rejected("too-many-points", f"{count} vertices; the limit is {limits.max_points}.")
    xyz_index = [names.index(axis) for axis in ("x", "y", "z")]
    mins, maxs, seen = np.full(3, np.inf), np.full(3, -np.inf), 0
    while seen < count:
        want = min(CHUNK_POINTS, count - seen)
        if fmt == "ascii":
            rows = []
            for _ in range(want):
                line = source.readline(65536)
                if not line:
                    break
                rows.append(line)
            if not rows:
                break
            try:
                values = np.array(b" ".join(rows).split(), dtype=float)
                chunk = values.reshape(len(rows), len(names))[:, xyz_index]
            except ValueError as exc:
                raise Rejected("invalid-data", f"Bad ASCII vertex rows: {exc}") from exc
        else:
            order = "<" if fmt == "binary_little_endian" else ">"
            dtype = np.dtype([(name, order + code) for name, code in properties])
            data = source.read(want * dtype.itemsize)
            usable = len(data) // dtype.itemsize
            if usable == 0:
                break
            records = np.frombuffer(data[: usable * dtype.itemsize], dtype=dtype)
            chunk = np.stack([records[a].astype(float) for a in ("x", "y", "z")], axis=1)
        if not np.all(np.isfinite(chunk)):
            raise Rejected("non-finite-values",
                           f"Vertices {seen}-{seen + len(chunk)} contain NaN or infinity.")
        if np.any(np.abs(chunk) > MAX_ABS_COORDINATE):
            raise Rejected("out-of-range", "Coordinates beyond ±1e9 m.")
        mins, maxs = np.minimum(mins, chunk.min(axis=0)), np.maximum(maxs, chunk.max(axis=0))
        seen += len(chunk)
        if on_xyz is not None:
            on_xyz(chunk)
        if len(chunk) < want:
            break
    if seen < count:
        raise Rejected("truncated", f"Only {seen} of the {count} declared vertices are present.")
    return Report(format="ply", point_count=seen, mins=mins.tolist(), maxs=maxs.tolist(),
                  extra={"ply_format": fmt})


def validate(open_raw: Callable[[], BinaryIO], *, size: int, encoding: str,
             limits: Limits = Limits(),
             on_points: Callable[[Any, Any], None] | None = None,
             on_xyz: Callable[..., None] | None = None) -> Report:
    """Check the file behind `open_raw()` (a seekable binary stream of `size` bytes).

    `on_points(header, points)` receives each LAS/LAZ chunk and `on_xyz(array)` each
    PLY chunk (`on_xyz(array, attributes, source="e57")` each E57 chunk), after that
    chunk passed its checks (so a writer can build the canonical form in the same pass;
    on `Rejected` the caller discards what it wrote).
    """
    if size == 0:
        raise Rejected("empty-file", "The file is empty.")
    if encoding not in MAGIC:
        raise Rejected("unsupported-encoding", f"Unknown encoding {encoding!r}.")
    raw = open_raw()
    head = raw.read(8)
    raw.seek(0)
    found = sniff(head)
    if not head.startswith(MAGIC[encoding]):
        raise Rejected("encoding-mismatch",
                       f"Declared {encoding!r} but the file starts like {found or 'nothing known'}"
                       f" ({head[:4]!r}).")
    if encoding == "ply":
        return _validate_ply(raw, limits=limits, on_xyz=on_xyz)
    if encoding == "e57":
        from inspections.pointcloud.e57 import validate_e57

        return validate_e57(raw, size=size, limits=limits, on_xyz=on_xyz)
    if encoding in ("las+gzip", "las+zstd"):
        inner = _decompressed(raw, encoding, size, limits)
        if not inner.peek(4)[:4].startswith(b"LASF"):
            raise Rejected("encoding-mismatch",
                           f"The {encoding.split('+')[1]} stream does not contain a LAS file.")
        return _validate_las(inner, compressed_size=size, wrapped=True, encoding="las",
                             limits=limits, on_points=on_points)
    return _validate_las(raw, compressed_size=size, wrapped=False, encoding=encoding,
                         limits=limits, on_points=on_points)
