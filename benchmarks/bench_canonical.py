"""Canonical point-cloud form (ADR 0003): size, write, full read, spatial subset read.

Input: the real airborne scan tests/fixtures/pointclouds/autzen_trim.laz (110,000
points) tiled 20x side by side = 2.2 M points, so the numbers are not dominated by
fixed costs. Candidates:

- `las`: uncompressed LAS (reference for size);
- `laz`: LAZ as the source order, what the worker writes today;
- `laz_sorted`: LAZ with points sorted into a 32x32 XY grid, chunks of 50,000 points
  and a sidecar index of each chunk's bounds (the COPC idea without the octree);
  a subset read seeks to the chunks whose bounds meet the query box;
- `zstd_columns`: columnar chunks (x, y, z as float64, intensity, classification),
  zstd level 3, one blob per chunk of the same sorted order (hand-rolled);
- `parquet`: the same columns and sorted order as a Parquet file (pyarrow, zstd),
  one row group per chunk; a subset read keeps the row groups whose x/y statistics
  meet the box (the row-group min/max are the spatial index).

The subset query is a box covering ~4 % of the area. Run:
`.venv/bin/python benchmarks/bench_canonical.py` (no services needed).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import laspy
import numpy as np
import zstandard

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "fixtures" / "pointclouds" / "autzen_trim.laz"
TILES = 20
CHUNK = 50_000


def tiled() -> laspy.LasData:
    src = laspy.read(SOURCE)
    width = float(src.header.maxs[0] - src.header.mins[0]) + 1.0
    xs, ys, zs, inten, cls = [], [], [], [], []
    for tile in range(TILES):
        xs.append(np.asarray(src.x) + tile * width)
        ys.append(np.asarray(src.y))
        zs.append(np.asarray(src.z))
        inten.append(np.asarray(src.intensity))
        cls.append(np.asarray(src.classification))
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales = src.header.scales
    header.offsets = src.header.mins
    out = laspy.LasData(header)
    out.x, out.y, out.z = np.concatenate(xs), np.concatenate(ys), np.concatenate(zs)
    out.intensity = np.concatenate(inten)
    out.classification = np.concatenate(cls)
    return out


def timed(fn):  # type: ignore[no-untyped-def]
    best, value = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def grid_order(x: np.ndarray, y: np.ndarray, cells: int = 32) -> np.ndarray:
    gx = ((x - x.min()) / (np.ptp(x) + 1e-9) * cells).astype(int).clip(0, cells - 1)
    gy = ((y - y.min()) / (np.ptp(y) + 1e-9) * cells).astype(int).clip(0, cells - 1)
    return np.lexsort((gx, gy))


def main() -> None:
    data = tiled()
    n = len(data.points)
    x, y = np.asarray(data.x), np.asarray(data.y)
    box = (x.min() + 0.4 * np.ptp(x), x.min() + 0.6 * np.ptp(x),
           y.min() + 0.4 * np.ptp(y), y.min() + 0.6 * np.ptp(y))
    inside = (x >= box[0]) & (x <= box[1]) & (y >= box[2]) & (y <= box[3])
    expected = int(inside.sum())
    results: dict[str, dict[str, float]] = {}

    def write(compress: bool, points: laspy.LasData) -> bytes:
        buffer = io.BytesIO()
        points.write(buffer, do_compress=compress)
        return buffer.getvalue()

    for name, compress in (("las", False), ("laz", True)):
        write_s, blob = timed(lambda c=compress: write(c, data))

        def full(blob: bytes = blob) -> int:
            return len(laspy.read(io.BytesIO(blob)).points)

        def subset(blob: bytes = blob) -> int:
            pts = laspy.read(io.BytesIO(blob))
            px, py = np.asarray(pts.x), np.asarray(pts.y)
            return int(((px >= box[0]) & (px <= box[1]) & (py >= box[2])
                        & (py <= box[3])).sum())

        read_s, count = timed(full)
        subset_s, found = timed(subset)
        assert count == n and found == expected
        results[name] = {"mb": len(blob) / 1e6, "write_s": write_s, "read_s": read_s,
                         "subset_s": subset_s}

    order = grid_order(x, y)
    sorted_points = data[order]
    sx, sy = np.asarray(sorted_points.x), np.asarray(sorted_points.y)
    chunks = [(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]
    index = [{"start": a, "stop": b, "min": [float(sx[a:b].min()), float(sy[a:b].min())],
              "max": [float(sx[a:b].max()), float(sy[a:b].max())]} for a, b in chunks]
    write_s, blob = timed(lambda: write(True, sorted_points))
    hits = [c for c in index if c["min"][0] <= box[1] and c["max"][0] >= box[0]
            and c["min"][1] <= box[3] and c["max"][1] >= box[2]]

    def sorted_subset() -> int:
        found = 0
        with laspy.open(io.BytesIO(blob)) as reader:
            for chunk in hits:
                reader.seek(chunk["start"])
                pts = reader.read_points(chunk["stop"] - chunk["start"])
                px, py = np.asarray(pts.x), np.asarray(pts.y)
                found += int(((px >= box[0]) & (px <= box[1]) & (py >= box[2])
                              & (py <= box[3])).sum())
        return found

    read_s, _ = timed(lambda: len(laspy.read(io.BytesIO(blob)).points))
    subset_s, found = timed(sorted_subset)
    assert found == expected
    results["laz_sorted"] = {"mb": (len(blob) + len(json.dumps(index))) / 1e6,
                             "write_s": write_s, "read_s": read_s, "subset_s": subset_s}

    columns = {"x": sx, "y": sy, "z": np.asarray(sorted_points.z),
               "intensity": np.asarray(sorted_points.intensity),
               "classification": np.asarray(sorted_points.classification)}
    compressor = zstandard.ZstdCompressor(level=3)

    def write_columns() -> list[dict[str, bytes]]:
        return [{k: compressor.compress(np.ascontiguousarray(v[a:b]).tobytes())
                 for k, v in columns.items()} for a, b in chunks]

    write_s, blobs = timed(write_columns)
    dtypes = {k: v.dtype for k, v in columns.items()}
    decompressor = zstandard.ZstdDecompressor()

    def read_chunk(chunk: dict[str, bytes], names: tuple[str, ...]) -> dict[str, np.ndarray]:
        return {k: np.frombuffer(decompressor.decompress(chunk[k]), dtype=dtypes[k])
                for k in names}

    def columns_full() -> int:
        return sum(len(read_chunk(c, tuple(columns))["x"]) for c in blobs)

    def columns_subset() -> int:
        found = 0
        for meta in hits:
            chunk = read_chunk(blobs[meta["start"] // CHUNK], ("x", "y"))
            px, py = chunk["x"], chunk["y"]
            found += int(((px >= box[0]) & (px <= box[1]) & (py >= box[2])
                          & (py <= box[3])).sum())
        return found

    read_s, count = timed(columns_full)
    subset_s, found = timed(columns_subset)
    assert count == n and found == expected
    size = sum(len(b) for c in blobs for b in c.values())
    results["zstd_columns"] = {"mb": size / 1e6, "write_s": write_s, "read_s": read_s,
                               "subset_s": subset_s}

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(columns)

    def write_parquet() -> bytes:
        sink = io.BytesIO()
        pq.write_table(table, sink, row_group_size=CHUNK, compression="zstd")
        return sink.getvalue()

    write_s, parquet_blob = timed(write_parquet)

    def parquet_full() -> int:
        return pq.read_table(io.BytesIO(parquet_blob)).num_rows

    def parquet_subset() -> int:
        filters = [("x", ">=", box[0]), ("x", "<=", box[1]), ("y", ">=", box[2]),
                   ("y", "<=", box[3])]
        return pq.read_table(io.BytesIO(parquet_blob), columns=["x", "y", "z"],
                             filters=filters).num_rows

    read_s, count = timed(parquet_full)
    subset_s, found = timed(parquet_subset)
    assert count == n and found == expected
    results["parquet"] = {"mb": len(parquet_blob) / 1e6, "write_s": write_s,
                          "read_s": read_s, "subset_s": subset_s}

    print(f"# {n} points, subset box holds {expected} ({100 * expected / n:.1f} %), "
          f"{len(hits)} of {len(chunks)} chunks")
    for name, figures in results.items():
        for key, value in figures.items():
            print(f"BENCH canonical_{name}_{key} {value:.3f}")


if __name__ == "__main__":
    main()
