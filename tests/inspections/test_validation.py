"""Streaming validation of scan files (Django-free): every malformed case has its reason."""

from __future__ import annotations

import gzip
import io
import struct

import laspy
import numpy as np
import pytest
import zstandard

from inspections.pointcloud.canonical import CanonicalWriter, read_xyz
from inspections.pointcloud.validate import Limits, Rejected, validate
from tests.inspections.ingest_helpers import fixture_bytes


def check(data: bytes, encoding: str, limits: Limits = Limits()) -> int:  # noqa: B008
    out = io.BytesIO()
    writer = CanonicalWriter(out)
    report = validate(lambda: io.BytesIO(data), size=len(data), encoding=encoding,
                      limits=limits, on_points=writer.on_points, on_xyz=writer.on_xyz)
    writer.close()
    xyz = read_xyz(io.BytesIO(out.getvalue()))
    assert len(xyz) == report.point_count
    assert np.allclose(xyz.min(axis=0), report.mins, atol=1e-3)
    assert np.allclose(xyz.max(axis=0), report.maxs, atol=1e-3)
    return report.point_count


def las_with(**patches: object) -> bytes:
    """simple.las with header fields overwritten at their LAS 1.2 byte offsets."""
    data = bytearray(fixture_bytes("simple.las"))
    offsets = {"count": (107, "<I"), "scale_x": (131, "<d"), "offset_x": (155, "<d"),
               "max_x": (179, "<d")}
    for name, value in patches.items():
        offset, fmt = offsets[name]
        struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def ply(body: bytes, count: int = 3, fmt: str = "binary_little_endian") -> bytes:
    return (f"ply\nformat {fmt} 1.0\nelement vertex {count}\nproperty float x\n"
            f"property float y\nproperty float z\nend_header\n").encode() + body


GOOD_PLY = ply(np.array([[0, 0, 0], [1, 2, 3], [4, 5, 6]], "<f4").tobytes())


@pytest.mark.parametrize(("name", "encoding", "points"), [
    ("simple.las", "las", 1065), ("simple.laz", "laz", 1065), ("test1_4.las", "las", 1000),
    ("simple.copc.laz", "laz", 1065), ("autzen_trim.laz", "laz", 110_000),
])
def test_real_files_pass_and_become_canonical_parquet(name: str, encoding: str, points: int
                                                  ) -> None:
    assert check(fixture_bytes(name), encoding) == points


def test_wrapped_las_and_ply_pass() -> None:
    las = fixture_bytes("simple.las")
    assert check(gzip.compress(las), "las+gzip") == 1065
    assert check(zstandard.ZstdCompressor().compress(las), "las+zstd") == 1065
    assert check(GOOD_PLY, "ply") == 3
    ascii_ply = ply(b"1 2 3\n4 5 6\n", count=2, fmt="ascii")
    assert check(ascii_ply, "ply") == 2


def _bomb() -> bytes:
    header = las_with(count=10_000_000)[:227]  # claims 340 MB of points
    return gzip.compress(header + bytes(340_000_000), 9)


@pytest.mark.parametrize(("case", "data", "encoding", "reason"), [
    ("empty file", b"", "las", "empty-file"),
    ("LAS declared as LAZ", "simple.las", "laz", "encoding-mismatch"),
    ("LAZ declared as LAS", "simple.laz", "las", "encoding-mismatch"),
    ("LAS declared as PLY", "simple.las", "ply", "encoding-mismatch"),
    ("LAZ declared gzip", "simple.laz", "las+gzip", "encoding-mismatch"),
    ("truncated LAS", "simple.las:20000", "las", "truncated"),
    ("truncated LAZ", "simple.laz:9000", "laz", "truncated"),
    ("header count too small", las_with(count=1000), "las", "point-count-mismatch"),
    ("header count too large", las_with(count=2000), "las", "truncated"),
    ("NaN scale", las_with(scale_x=float("nan")), "las", "non-finite-values"),
    ("infinite offset", las_with(offset_x=float("inf")), "las", "non-finite-values"),
    ("zero scale", las_with(scale_x=0.0), "las", "invalid-scale"),
    ("max below min", las_with(max_x=1.0), "las", "invalid-bounds"),
    ("points outside header bounds (real file)", "simple1_3.las", "las", "out-of-bounds"),
    ("empty cloud", "empty-las", "las", "empty-cloud"),
    ("too many points", "simple.las", "las", "too-many-points"),
    ("gzip bomb", "bomb", "las+gzip", "decompression-bomb"),
    ("truncated gzip", "gzip:5000", "las+gzip", "truncated"),
    ("PLY with NaN", GOOD_PLY[:-4] + np.array([np.nan], "<f4").tobytes(), "ply",
     "non-finite-values"),
    ("truncated PLY", GOOD_PLY[:-5], "ply", "truncated"),
    ("PLY without end_header", b"ply\nformat ascii 1.0\n", "ply", "truncated"),
    ("PLY without xyz", b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float q\n"
     b"end_header\n1\n", "ply", "invalid-header"),
    ("empty PLY", ply(b"", count=0), "ply", "empty-cloud"),
    ("garbage", b"\x00" * 1000, "laz", "encoding-mismatch"),
])
def test_malformed_files_are_rejected_with_their_reason(case: str, data: object,
                                                        encoding: str, reason: str) -> None:
    limits = Limits()
    if data == "empty-las":
        out = io.BytesIO()
        laspy.LasData(laspy.LasHeader(point_format=3, version="1.2")).write(out)
        data = out.getvalue()
    elif data == "bomb":
        data = _bomb()
    elif data == "gzip:5000":
        data = gzip.compress(fixture_bytes("simple.las"))[:5000]
    elif isinstance(data, str):
        name, _, cut = data.partition(":")
        data = fixture_bytes(name)[: int(cut)] if cut else fixture_bytes(name)
    if case == "too many points":
        limits = Limits(max_points=1000)
    with pytest.raises(Rejected) as caught:
        check(data, encoding, limits)  # type: ignore[arg-type]
    assert caught.value.reason == reason, caught.value.detail
    assert caught.value.detail


def test_a_spatial_subset_reads_only_the_box() -> None:
    out = io.BytesIO()
    writer = CanonicalWriter(out)
    data = fixture_bytes("autzen_trim.laz")
    validate(lambda: io.BytesIO(data), size=len(data), encoding="laz",
             on_points=writer.on_points)
    writer.close()
    everything = read_xyz(io.BytesIO(out.getvalue()))
    box = (636_500.0, 636_700.0, 849_000.0, 849_200.0)
    subset = read_xyz(io.BytesIO(out.getvalue()), bbox=box)
    inside = ((everything[:, 0] >= box[0]) & (everything[:, 0] <= box[1])
              & (everything[:, 1] >= box[2]) & (everything[:, 1] <= box[3]))
    assert 0 < inside.sum() <= len(subset) < len(everything)
