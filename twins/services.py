"""Writes of the twins app: CAD revisions.

One service, one transaction: the files go to object storage first (keys unique to the
revision), then the row and its audit entry commit together. A refused mesh writes
nothing.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max

from audit import tracking
from audit.services import audit_append
from twins.models import CadRevision

logger = logging.getLogger(__name__)

UNITS_TO_M = {"m": 1.0, "mm": 1e-3, "cm": 1e-2, "um": 1e-6, "in": 0.0254, "ft": 0.3048}
FORMATS = {".stl": "stl", ".obj": "obj", ".ply": "ply", ".off": "off", ".glb": "glb",
           ".gltf": "gltf", ".step": "step", ".stp": "step"}
MAX_CAD_BYTES = 512 * 1024 * 1024
#: A part smaller than this or a structure larger than this is almost surely declared in
#: the wrong units (an STL in mm declared as metres is 1000 times too big).
PLAUSIBLE_SIZE_M = (1e-3, 2e3)
REGION_MAX_ANGLE_DEG = 10.0


class CadRefused(ValueError):
    """The file cannot be a reference; `reason` is safe to show to the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _load(path: Path, fmt: str) -> Any:
    import numpy as np

    from inspections.geometry.mesh import MeshError, mesh_from_arrays, mesh_load

    try:
        if fmt == "step":
            # OpenCASCADE (cascadio) tessellates the B-rep into a GLB in metres, taking
            # the STEP file's own length unit into account.
            import cascadio

            glb = path.with_suffix(".glb")
            if cascadio.step_to_glb(str(path), str(glb)) != 0 or not glb.exists():
                raise CadRefused("the STEP file could not be read or tessellated")
            path, fmt = glb, "glb"
        if fmt in ("glb", "gltf"):
            import open3d as o3d

            with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
                raw = o3d.io.read_triangle_mesh(str(path), enable_post_processing=False,
                                                print_progress=False)
            triangles = np.asarray(raw.triangles)
            if triangles.size == 0:
                raise CadRefused("no triangles could be read from the glTF file")
            return mesh_from_arrays(np.asarray(raw.vertices), triangles, source=path.name)
        return mesh_load(path)
    except MeshError as exc:
        raise CadRefused(exc.reason) from exc


def cad_revision_create(
    *, asset_id: int, data: bytes, filename: str, units: str, label: str = "",
    author: str = "", change_note: str = "", user: Any = None,
) -> tuple[CadRevision, bool]:
    """Validate a CAD file, convert it to metres, compute its regions, record a revision.

    Returns (revision, created). Idempotent per asset by the file's SHA-256: the same
    bytes again return the existing revision. Refuses (CadRefused) unknown formats and
    units, files over
    MAX_CAD_BYTES, and meshes the geometry loader refuses (empty, truncated or corrupt,
    every triangle degenerate). Implausible sizes for the declared units, open
    boundaries, non-manifold edges and dropped degenerate triangles are `warnings`.
    """
    # numpy and the geometry code load with the first CAD file, not with the web process.
    import numpy as np

    from inspections.geometry.mesh import mesh_face_regions, mesh_from_arrays, mesh_inspect

    suffix = Path(filename).suffix.lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise CadRefused(f"unsupported format {suffix or filename!r}; expected one of "
                         + ", ".join(sorted(FORMATS)))
    if units not in UNITS_TO_M:
        raise CadRefused(f"unknown units {units!r}; expected one of {', '.join(UNITS_TO_M)}")
    if not data:
        raise CadRefused("file is empty")
    if len(data) > MAX_CAD_BYTES:
        raise CadRefused(f"file exceeds {MAX_CAD_BYTES} bytes")
    sha256 = hashlib.sha256(data).hexdigest()
    existing = CadRevision.objects.filter(asset_id=asset_id, sha256=sha256).first()
    if existing is not None:
        return existing, False

    with tempfile.TemporaryDirectory(prefix="d2r-cad-") as scratch:
        path = Path(scratch) / f"model{suffix}"
        path.write_bytes(data)
        loaded = _load(path, fmt)
    # STEP carries its own length unit and arrives in metres; other formats are unitless.
    scale = 1.0 if fmt == "step" else UNITS_TO_M[units]
    mesh = mesh_from_arrays(np.asarray(loaded.vertices) * scale, loaded.triangles,
                            source=filename)
    report = mesh_inspect(mesh)
    regions = mesh_face_regions(mesh, max_angle_deg=REGION_MAX_ANGLE_DEG)
    warnings = _warnings(report, mesh.diagonal, loaded.dropped_degenerate, units)

    revision_id = uuid.uuid4()
    base = f"cad/{asset_id}/{revision_id}"
    source_key = default_storage.save(f"{base}/source{suffix}", ContentFile(data))
    mesh_buffer = io.BytesIO()
    np.savez(mesh_buffer, vertices=mesh.vertices, triangles=mesh.triangles)
    mesh_key = default_storage.save(f"{base}/mesh.npz", ContentFile(mesh_buffer.getvalue()))
    regions_buffer = io.BytesIO()
    np.save(regions_buffer, regions)
    regions_key = default_storage.save(f"{base}/regions.npy",
                                       ContentFile(regions_buffer.getvalue()))
    fields = dict(
        label=label, author=author, change_note=change_note, filename=Path(filename).name[:255],
        source_format=fmt, units=units, scale_to_m=scale, sha256=sha256, size_bytes=len(data),
        source_key=source_key, mesh_key=mesh_key, regions_key=regions_key,
        vertex_count=report.n_vertices, triangle_count=report.n_triangles,
        region_count=int(regions.max()) + 1, area_m2=report.area,
        bbox_min=list(report.bbox_min), bbox_max=list(report.bbox_max),
        watertight=report.is_watertight, report=_report_dict(report), warnings=warnings,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    for _ in range(3):  # two uploads for one asset at once: retry the number
        try:
            # One entry, twins.cad_revision.created: the tracker's would repeat it.
            with transaction.atomic(), tracking.recorded_by_caller(CadRevision):
                top = CadRevision.objects.filter(asset_id=asset_id).aggregate(n=Max("number"))
                revision = CadRevision.objects.create(
                    id=revision_id, asset_id=asset_id, number=(top["n"] or 0) + 1, **fields)
                audit_append(action="twins.cad_revision.created", actor=str(user or "system"),
                             object_type="twins.CadRevision", object_id=str(revision.id),
                             payload={"asset": asset_id, "number": revision.number,
                                      "sha256": sha256, "units": units,
                                      "triangles": revision.triangle_count,
                                      "warnings": warnings})
            return revision, True
        except IntegrityError:
            existing = CadRevision.objects.filter(asset_id=asset_id, sha256=sha256).first()
            if existing is not None:
                return existing, False
    raise CadRefused("could not allocate a revision number; try again")


def _warnings(report: Any, diagonal_m: float, dropped: int, units: str) -> list[str]:
    out = []
    lo, hi = PLAUSIBLE_SIZE_M
    if not lo <= diagonal_m <= hi:
        out.append(f"model size {diagonal_m:.4g} m is implausible for units {units!r}; "
                   "check the declared units")
    if not report.is_watertight:
        out.append(f"not watertight: {report.n_boundary_edges} boundary edges, "
                   f"{report.n_non_manifold_edges} non-manifold edges (deviation signs use "
                   "face normals, so open meshes are still judged)")
    if not report.is_consistently_oriented:
        out.append("inconsistent triangle winding: deviation signs may flip between faces")
    if dropped:
        out.append(f"{dropped} degenerate triangles dropped")
    if report.n_sliver_faces:
        out.append(f"{report.n_sliver_faces} sliver triangles")
    return out


def _report_dict(report: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(report).items()}
