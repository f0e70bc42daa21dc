"""The canonical form of a validated scan: one Parquet file (ADR 0003).

Columns `x`, `y`, `z` are int32 quantized like LAS (`value * scale + offset`, the
scales and offsets in the file's `d2r.canonical` metadata), then the attributes the
processing and the viewers use: intensity, classification, return numbers, GPS time
and RGB when the source has them. One row group per validated chunk (≤ 500,000
points, acquisition order), compressed with zstd; the row groups' min/max statistics
are the spatial index a subset read uses.

Written in the validation pass, chunk by chunk, to a worker's local scratch file
(deleted after upload).
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

import numpy as np

PLY_SCALE = 1e-4  # 0.1 mm, for every source in metres without its own quantization (PLY, E57)
FORMAT_VERSION = 1
_OPTIONAL = {"gps_time": "gps_time", "red": "red", "green": "green", "blue": "blue"}
INT32 = np.iinfo(np.int32)


class CanonicalError(ValueError):
    """The validated points do not fit the canonical form (e.g. coordinate range)."""


class CanonicalWriter:
    """Receives validated chunks (`on_points` / `on_xyz`) and writes Parquet to `dest`."""

    def __init__(self, dest: BinaryIO) -> None:
        self.dest = dest
        self.writer: Any = None
        self.count = 0
        self.scales: np.ndarray | None = None
        self.offsets: np.ndarray | None = None

    def _write(self, columns: dict[str, np.ndarray], source: dict[str, Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(columns)
        if self.writer is None:
            meta = {"version": FORMAT_VERSION, "scales": list(map(float, self.scales)),
                    "offsets": list(map(float, self.offsets)), **source}
            schema = table.schema.with_metadata({"d2r.canonical": json.dumps(meta)})
            self.writer = pq.ParquetWriter(self.dest, schema, compression="zstd",
                                           use_dictionary=["classification"])
        self.writer.write_table(table, row_group_size=max(1, table.num_rows))
        self.count += table.num_rows

    def on_points(self, header: Any, points: Any) -> None:
        if self.scales is None:
            self.scales = np.asarray(header.scales, dtype=float)
            self.offsets = np.asarray(header.offsets, dtype=float)
        names = set(points.point_format.dimension_names)
        columns = {"x": np.asarray(points.X, dtype=np.int32),
                   "y": np.asarray(points.Y, dtype=np.int32),
                   "z": np.asarray(points.Z, dtype=np.int32),
                   "intensity": np.asarray(points.intensity, dtype=np.uint16),
                   "classification": np.asarray(points.classification, dtype=np.uint8),
                   "return_number": np.asarray(points.return_number, dtype=np.uint8),
                   "number_of_returns": np.asarray(points.number_of_returns, dtype=np.uint8)}
        for column, dimension in _OPTIONAL.items():
            if dimension in names:
                columns[column] = np.asarray(points[dimension])
        self._write(columns, {"source": "las", "point_format": header.point_format.id,
                              "las_version": str(header.version)})

    def on_xyz(self, xyz: np.ndarray, attributes: dict[str, np.ndarray] | None = None, *,
               source: str = "ply") -> None:
        """A chunk of coordinates in metres (PLY, E57), with any attribute columns the
        source has (E57: `intensity`, `red`/`green`/`blue` as uint16)."""
        if self.scales is None:
            self.scales = np.full(3, PLY_SCALE)
            self.offsets = np.floor(xyz.min(axis=0))
        quantized = np.round((xyz - self.offsets) / self.scales)
        if quantized.size and (quantized.min() < INT32.min or quantized.max() > INT32.max):
            raise CanonicalError("The cloud spans more than ±214 km at 0.1 mm resolution.")
        q = quantized.astype(np.int32)
        self._write({"x": q[:, 0], "y": q[:, 1], "z": q[:, 2], **(attributes or {})},
                    {"source": source})

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_xyz(source: Any, *, bbox: tuple[float, float, float, float] | None = None
             ) -> np.ndarray:
    """The canonical file's coordinates in metres, optionally only row groups (and
    points) inside the XY box (xmin, xmax, ymin, ymax)."""
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(source).metadata[b"d2r.canonical"])
    scales, offsets = np.asarray(meta["scales"]), np.asarray(meta["offsets"])
    filters = None
    if bbox is not None:
        lo = np.floor((np.array([bbox[0], bbox[2]]) - offsets[:2]) / scales[:2])
        hi = np.ceil((np.array([bbox[1], bbox[3]]) - offsets[:2]) / scales[:2])
        filters = [("x", ">=", int(lo[0])), ("x", "<=", int(hi[0])),
                   ("y", ">=", int(lo[1])), ("y", "<=", int(hi[1]))]
    table = pq.read_table(source, columns=["x", "y", "z"], filters=filters)
    raw = np.stack([table.column(c).to_numpy() for c in ("x", "y", "z")], axis=1)
    return raw * scales + offsets
