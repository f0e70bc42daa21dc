"""Known-truth scans of a real CAD part (tests/fixtures/cad/featuretype.STL, inches)."""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from django.utils import timezone

CAD = Path(__file__).resolve().parent.parent / "fixtures" / "cad"
PART = CAD / "featuretype.STL"
INCH = 0.0254

CONTRACT = {
    "criteria": {"tolerance_mm": 0.5, "fail_mm": 1.5, "max_fraction_out": 0.02,
                 "max_fraction_fail": 0.001},
    "gates": {"max_alignment_rmse_mm": 0.3, "min_fitness": 0.95, "min_coverage": 0.7,
              "min_density_per_cm2": 5.0},
    "device_accuracy_mm": 0.03,
}


def rotation(axis: Any, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.deg2rad(degrees)
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def rigid(axis: Any, degrees: float, translation: Any) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rotation(axis, degrees)
    m[:3, 3] = translation
    return m


def part_mesh() -> tuple[Any, np.ndarray]:
    """The part in metres and its regions, exactly as the twins service stores them."""
    from inspections.geometry.mesh import mesh_face_regions, mesh_from_arrays, mesh_load

    raw = mesh_load(PART)
    mesh = mesh_from_arrays(np.asarray(raw.vertices) * INCH, raw.triangles)
    return mesh, mesh_face_regions(mesh, max_angle_deg=10.0)


def largest_regions(mesh: Any, regions: np.ndarray) -> list[int]:
    area = np.bincount(regions, weights=mesh.face_areas())
    return [int(r) for r in np.argsort(area)[::-1]]


def sample_scan(mesh: Any, regions: np.ndarray, *, n: int, noise_mm: float = 0.03,
                dent: tuple[int, float, float] | None = None,
                shift: tuple[int, float] | None = None, seed: int = 1) -> np.ndarray:
    """Points on the surface (mesh frame, metres) with known deviations.

    dent = (region, depth mm, radius mm): a cosine dent into the material, centred on
    the region's sample nearest its centroid, applied to that region's points only.
    shift = (region, mm): the whole region moved outwards along its normals.
    """
    from inspections.geometry.mesh import mesh_sample_points

    rng = np.random.default_rng(seed)
    pts, normals, tri = mesh_sample_points(mesh, n, seed=seed)
    point_regions = regions[tri]
    pts = pts + rng.normal(0.0, noise_mm / 1000.0, pts.shape)
    if dent is not None:
        region, depth, radius = dent
        mine = np.nonzero(point_regions == region)[0]
        centroid = pts[mine].mean(axis=0)
        centre = pts[mine[np.argmin(np.linalg.norm(pts[mine] - centroid, axis=1))]]
        rho = np.linalg.norm(pts[mine] - centre, axis=1) / (radius / 1000.0)
        inside = mine[rho < 1]
        profile = 0.5 * (1 + np.cos(np.pi * rho[rho < 1])) * depth / 1000.0
        pts[inside] -= normals[inside] * profile[:, None]
    if shift is not None:
        region, mm = shift
        mine = point_regions == region
        pts[mine] += normals[mine] * (mm / 1000.0)
    return pts


def make_processed_scan(asset: Any, points_scan_frame: np.ndarray, *,
                        edge_transform: np.ndarray | None, **fields: Any) -> Any:
    """A processed Scan whose canonical Parquet holds `points` (written like ingestion)."""
    from inspections import objectstore
    from inspections.models import Scan
    from inspections.pointcloud.canonical import CanonicalWriter

    buffer = io.BytesIO()
    writer = CanonicalWriter(buffer)
    for start in range(0, points_scan_frame.shape[0], 50_000):
        writer.on_xyz(points_scan_frame[start:start + 50_000])
    writer.close()
    data = buffer.getvalue()
    scan_id = uuid.uuid4()
    key = objectstore.key_for(f"scans/canonical/{scan_id}.parquet")
    objectstore.put(key, data)
    defaults: dict[str, Any] = {
        "device": "edge-7", "firmware": "2.4.1", "operator": "kim",
        "calibration": {"accuracy_mm": 0.03, "calibrated_at": "2026-11-01T00:00:00Z"},
        "captured_at": timezone.now(),
    }
    defaults.update(fields)
    return Scan.objects.create(
        id=scan_id, asset=asset, status="processed", sha256=hashlib.sha256(
            data + scan_id.bytes).hexdigest(), size_bytes=len(data), encoding="ply",
        raw_key=key, canonical_key=key, received_at=timezone.now(),
        processed_at=timezone.now(), point_count=points_scan_frame.shape[0],
        edge_transform=None if edge_transform is None else
        [float(v) for v in np.asarray(edge_transform).reshape(-1)], **defaults)
