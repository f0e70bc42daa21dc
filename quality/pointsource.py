"""Streaming reads of a canonical scan (ADR 0003 Parquet) and writes of deviation maps.

Django-free. The canonical file stores int32 coordinates with LAS-style scales and
offsets in its `d2r.canonical` metadata; batches are read one at a time, so memory is
bounded by the batch size whatever the scan's size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
DEFAULT_BATCH = 1 << 20


def canonical_meta(path: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    meta = json.loads(schema.metadata[b"d2r.canonical"])
    meta["num_rows"] = pq.ParquetFile(path).metadata.num_rows
    return meta


def iter_points(path: str, *, batch_points: int = DEFAULT_BATCH
                ) -> Iterator[tuple[F64, npt.NDArray[np.int32]]]:
    """Yield (xyz in metres, float64 (n, 3); raw int32 (n, 3)) per batch."""
    import pyarrow.parquet as pq

    meta = canonical_meta(path)
    scales, offsets = np.asarray(meta["scales"]), np.asarray(meta["offsets"])
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=batch_points, columns=["x", "y", "z"]):
        raw = np.stack([batch.column(i).to_numpy() for i in range(3)], axis=1).astype(np.int32)
        yield raw * scales + offsets, raw


def sample_points(path: str, *, max_points: int, seed: int = 0) -> F64:
    """A uniform random subset of at most about `max_points` points (one streaming pass)."""
    total = canonical_meta(path)["num_rows"]
    keep = min(1.0, max_points / max(total, 1))
    rng = np.random.default_rng(seed)
    parts = []
    for xyz, _ in iter_points(path):
        parts.append(xyz if keep >= 1.0 else xyz[rng.random(xyz.shape[0]) < keep])
    return np.concatenate(parts) if parts else np.empty((0, 3))


class DeviationMapWriter:
    """Per-point deviation map: the canonical int32 x, y, z (scan frame, same scales and
    offsets), signed distance `d` (float32, metres), `region` and `triangle` (int32).

    Metadata `d2r.deviation` carries the canonical scales/offsets, the scan-to-mesh
    transform and the float64 re-centring offset of the distance computation.
    """

    def __init__(self, path: str, *, canonical: dict[str, Any], transform: F64,
                 offset: F64) -> None:
        self.path = path
        self.meta = {"version": 1, "units": "m", "scales": canonical["scales"],
                     "offsets": canonical["offsets"], "frame": "scan",
                     "transform": np.asarray(transform).tolist(),
                     "offset": np.asarray(offset).tolist()}
        self.writer: Any = None

    def write(self, raw: npt.NDArray[np.int32], distances: npt.NDArray[np.float32],
              regions: npt.NDArray[np.int32], triangles: npt.NDArray[np.int32]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({"x": raw[:, 0], "y": raw[:, 1], "z": raw[:, 2],
                          "d": distances.astype(np.float32), "region": regions.astype(np.int32),
                          "triangle": triangles.astype(np.int32)})
        if self.writer is None:
            schema = table.schema.with_metadata({"d2r.deviation": json.dumps(self.meta)})
            self.writer = pq.ParquetWriter(self.path, schema, compression="zstd")
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class LodSampler:
    """A random level of detail of at most about `max_points` (mesh frame, float32 around
    the mesh offset) with `d` and `region`, collected while streaming."""

    def __init__(self, *, total: int, max_points: int, seed: int = 0) -> None:
        self.keep = min(1.0, max_points / max(total, 1))
        self.rng = np.random.default_rng(seed)
        self.xyz: list[npt.NDArray[np.float32]] = []
        self.d: list[npt.NDArray[np.float32]] = []
        self.region: list[npt.NDArray[np.int32]] = []

    def add(self, xyz_mesh_centred: F64, d: npt.NDArray[np.float32],
            region: npt.NDArray[np.int32]) -> None:
        mask = self.rng.random(d.shape[0]) < self.keep
        self.xyz.append(xyz_mesh_centred[mask].astype(np.float32))
        self.d.append(d[mask])
        self.region.append(region[mask])

    def arrays(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32],
                              npt.NDArray[np.int32]]:
        if not self.d:
            return (np.empty((0, 3), np.float32), np.empty(0, np.float32),
                    np.empty(0, np.int32))
        return np.concatenate(self.xyz), np.concatenate(self.d), np.concatenate(self.region)

    def parquet_bytes(self, offset: F64) -> bytes:
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        xyz, d, region = self.arrays()
        table = pa.table({"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "d": d,
                          "region": region})
        table = table.replace_schema_metadata({"d2r.lod": json.dumps(
            {"version": 1, "units": "m", "frame": "mesh", "offset": np.asarray(offset).tolist()})})
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        return buffer.getvalue()
