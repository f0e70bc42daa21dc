"""Loading and validating CAD meshes (STL, OBJ, PLY, OFF).

A :class:`CadMesh` is the only mesh type the rest of ``inspections.geometry`` accepts. It is
built by :func:`mesh_load` (from a file) or :func:`mesh_from_arrays` (from arrays), both of
which refuse anything a deviation could not be trusted against — no triangles, non-finite
coordinates, out-of-range indices, a truncated file — by raising :class:`MeshError` with a
reason. Everything else (open boundaries, non-manifold edges, inconsistent winding) is
legal for CAD of structures and is *reported* by :func:`mesh_inspect`, not refused.

Invariants of a ``CadMesh``: vertices are finite float64 ``(V, 3)``; triangles are int32
``(F, 3)`` with ``F >= 1``, every index in range, no two corners of a triangle on the same
vertex, no zero-area triangle; exact duplicate vertices (STL "triangle soup") are merged so
that edges are shared and pseudo-normals can be computed. Both arrays are read-only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "CadMesh",
    "MeshError",
    "MeshReport",
    "mesh_face_regions",
    "mesh_from_arrays",
    "mesh_inspect",
    "mesh_load",
    "mesh_sample_points",
]

SUPPORTED_SUFFIXES = (".stl", ".obj", ".ply", ".off")

_BINARY_STL_HEADER = 84
_BINARY_STL_RECORD = 50
_ASCII_STL_VERTEX = re.compile(rb"vertex\s+(\S+)\s+(\S+)\s+(\S+)")
_ASCII_STL_FACET = re.compile(rb"\bfacet\b")
_ASCII_STL_ENDFACET = re.compile(rb"\bendfacet\b")


class MeshError(ValueError):
    """A mesh cannot be used as the reference of an inspection.

    ``reason`` is a short human-readable explanation (safe to show to a user); ``path`` is
    the offending file when there is one.
    """

    def __init__(self, reason: str, *, path: str | None = None) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)


@dataclass(frozen=True)
class CadMesh:
    """A validated triangle mesh in float64 model coordinates (see module invariants)."""

    vertices: npt.NDArray[np.float64]
    triangles: npt.NDArray[np.int32]
    source: str | None = None
    #: vertices merged because they were exact duplicates (STL stores every corner).
    merged_vertices: int = 0
    #: triangles dropped at load because they had zero area or a repeated corner.
    dropped_degenerate: int = 0
    _cache: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_triangles(self) -> int:
        """Number of triangles."""
        return int(self.triangles.shape[0])

    @property
    def bbox_min(self) -> npt.NDArray[np.float64]:
        """Lower corner of the axis-aligned bounding box."""
        return np.asarray(self.vertices.min(axis=0))

    @property
    def bbox_max(self) -> npt.NDArray[np.float64]:
        """Upper corner of the axis-aligned bounding box."""
        return np.asarray(self.vertices.max(axis=0))

    @property
    def center(self) -> npt.NDArray[np.float64]:
        """Bounding-box centre: the float64 offset subtracted before any float32 work."""
        return (self.bbox_min + self.bbox_max) / 2.0

    @property
    def diagonal(self) -> float:
        """Length of the bounding-box diagonal (the model size used for tolerances)."""
        return float(np.linalg.norm(self.bbox_max - self.bbox_min))

    def face_normals(self) -> npt.NDArray[np.float64]:
        """Unit normals ``(F, 3)`` following the right-hand rule of each triangle's winding."""
        cached = self._cache.get("face_normals")
        if cached is None:
            v = self.vertices - self.center
            t = self.triangles
            n = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
            n /= np.linalg.norm(n, axis=1, keepdims=True)
            n.setflags(write=False)
            self._cache["face_normals"] = n
            cached = n
        return cached  # type: ignore[return-value]

    def face_areas(self) -> npt.NDArray[np.float64]:
        """Triangle areas ``(F,)``."""
        v = self.vertices - self.center
        t = self.triangles
        n = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
        return np.asarray(0.5 * np.linalg.norm(n, axis=1))


@dataclass(frozen=True)
class MeshReport:
    """What :func:`mesh_inspect` found; none of these conditions is fatal."""

    n_vertices: int
    n_triangles: int
    area: float
    bbox_min: tuple[float, float, float]
    bbox_max: tuple[float, float, float]
    #: every edge shared by exactly two triangles with opposite directions.
    is_watertight: bool
    #: every edge shared by at most two triangles.
    is_edge_manifold: bool
    #: no edge traversed twice in the same direction (consistent winding).
    is_consistently_oriented: bool
    n_boundary_edges: int
    n_non_manifold_edges: int
    #: degenerate triangles removed at load (zero area or repeated corner).
    n_degenerate_faces: int
    merged_vertices: int
    #: triangles whose smallest altitude is below 1e-6 of the model size (slivers).
    n_sliver_faces: int


def mesh_load(path: str | Path) -> CadMesh:
    """Read and validate a mesh file.

    STL (binary and ASCII) is parsed here so that a truncated or inconsistent file is
    detected instead of silently yielding fewer triangles; OBJ/PLY/OFF go through Open3D.

    Raises:
        MeshError: the file is missing, unreadable, truncated, empty, or its geometry is
            unusable (see :func:`mesh_from_arrays`).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise MeshError(
            f"unsupported mesh format {suffix!r}; expected one of {', '.join(SUPPORTED_SUFFIXES)}",
            path=str(p),
        )
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise MeshError(f"cannot read file: {exc.strerror or exc}", path=str(p)) from exc
    if not raw.strip():
        raise MeshError("file is empty", path=str(p))
    try:
        if suffix == ".stl":
            vertices, triangles = _parse_stl(raw)
        else:
            vertices, triangles = _read_with_open3d(p)
        return mesh_from_arrays(vertices, triangles, source=str(p))
    except MeshError as exc:
        if exc.path is None:
            raise MeshError(exc.reason, path=str(p)) from exc
        raise


def mesh_from_arrays(
    vertices: npt.ArrayLike,
    triangles: npt.ArrayLike,
    *,
    source: str | None = None,
) -> CadMesh:
    """Validate raw arrays and return a :class:`CadMesh`.

    Exact duplicate vertices are merged and degenerate triangles (repeated corner or zero
    area) are dropped and counted; unreferenced vertices are removed.

    Raises:
        MeshError: no triangles, wrong shapes, non-finite coordinates, indices out of
            range, or no triangle with a non-zero area.
    """
    v = np.asarray(vertices, dtype=np.float64)
    t = np.asarray(triangles)
    if v.ndim != 2 or v.shape[1] != 3:
        raise MeshError(f"vertices must have shape (V, 3), got {v.shape}")
    if t.size == 0:
        raise MeshError("mesh has no triangles")
    if t.ndim != 2 or t.shape[1] != 3:
        raise MeshError(f"triangles must have shape (F, 3), got {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise MeshError(f"triangle indices must be integers, got {t.dtype}")
    t = t.astype(np.int64, copy=False)
    if t.min() < 0 or t.max() >= v.shape[0]:
        raise MeshError(
            f"triangle indices out of range [0, {v.shape[0]}): min {t.min()}, max {t.max()}"
        )
    used = np.unique(t)
    if not np.isfinite(v[used]).all():
        bad = int((~np.isfinite(v[used])).any(axis=1).sum())
        raise MeshError(f"{bad} vertices have non-finite (NaN/inf) coordinates")

    # Merge exact duplicates and drop unreferenced vertices in one pass.
    uniq, inverse = np.unique(v[used], axis=0, return_inverse=True)
    remap = np.empty(v.shape[0], dtype=np.int64)
    remap[used] = inverse.reshape(-1)
    t = remap[t]
    merged = int(used.size - uniq.shape[0])

    repeated = (t[:, 0] == t[:, 1]) | (t[:, 1] == t[:, 2]) | (t[:, 2] == t[:, 0])
    centre = (uniq.min(axis=0) + uniq.max(axis=0)) / 2.0
    vc = uniq - centre
    cross = np.cross(vc[t[:, 1]] - vc[t[:, 0]], vc[t[:, 2]] - vc[t[:, 0]])
    doubled_area = np.linalg.norm(cross, axis=1)
    scale = float(np.linalg.norm(uniq.max(axis=0) - uniq.min(axis=0)))
    # Below this the face normal is numerical noise, so the face cannot carry a sign.
    zero_area = doubled_area <= (scale * scale) * 1e-24
    keep = ~(repeated | zero_area)
    if not keep.any():
        raise MeshError("every triangle is degenerate (zero area)")
    t = t[keep]
    dropped = int((~keep).sum())
    if dropped:
        used2, inverse2 = np.unique(t, return_inverse=True)
        uniq = uniq[used2]
        t = inverse2.reshape(-1, 3)

    vertices_out = np.ascontiguousarray(uniq, dtype=np.float64)
    triangles_out = np.ascontiguousarray(t, dtype=np.int32)
    vertices_out.setflags(write=False)
    triangles_out.setflags(write=False)
    return CadMesh(
        vertices=vertices_out,
        triangles=triangles_out,
        source=source,
        merged_vertices=merged,
        dropped_degenerate=dropped,
    )


def mesh_inspect(mesh: CadMesh) -> MeshReport:
    """Report topology and size of a mesh: watertightness, manifoldness, area, bbox."""
    _, counts, consistent = _edge_table(mesh.triangles)
    areas = mesh.face_areas()
    lmin, lmax = mesh.bbox_min, mesh.bbox_max
    longest = _longest_edges(mesh)
    altitude = 2.0 * areas / np.maximum(longest, np.finfo(np.float64).tiny)
    return MeshReport(
        n_vertices=int(mesh.vertices.shape[0]),
        n_triangles=mesh.n_triangles,
        area=float(areas.sum()),
        bbox_min=(float(lmin[0]), float(lmin[1]), float(lmin[2])),
        bbox_max=(float(lmax[0]), float(lmax[1]), float(lmax[2])),
        is_watertight=bool((counts == 2).all() and consistent),
        is_edge_manifold=bool((counts <= 2).all()),
        is_consistently_oriented=consistent,
        n_boundary_edges=int((counts == 1).sum()),
        n_non_manifold_edges=int((counts > 2).sum()),
        n_degenerate_faces=mesh.dropped_degenerate,
        merged_vertices=mesh.merged_vertices,
        n_sliver_faces=int((altitude < 1e-6 * mesh.diagonal).sum()),
    )


def mesh_face_regions(mesh: CadMesh, *, max_angle_deg: float = 10.0) -> npt.NDArray[np.int32]:
    """Label triangles by smooth patch: the per-region unit of deviation reports.

    Two triangles touching at a vertex are in the same region when their normals differ
    by at most ``max_angle_deg``; regions are the connected components of that relation,
    so a CAD face (plane, cylinder...) tessellated into many triangles becomes one region.
    Vertex (not edge) adjacency keeps a face whole across T-junctions, which CAD
    exporters leave where an edge of one triangle meets two edges of its neighbours.
    Labels are ``0..R-1``, ordered by their smallest triangle index.
    """
    t = mesh.triangles.astype(np.int64)
    n_faces = t.shape[0]
    normals = mesh.face_normals()
    vertex = t.reshape(-1)
    face = np.repeat(np.arange(n_faces), 3)
    order = np.argsort(vertex, kind="stable")
    vertex, face = vertex[order], face[order]
    cos_limit = np.cos(np.deg2rad(max_angle_deg))
    pairs_a: list[npt.NDArray[np.int64]] = []
    pairs_b: list[npt.NDArray[np.int64]] = []
    k = 1
    while k < vertex.shape[0]:
        same = vertex[k:] == vertex[:-k]
        if not same.any():
            break  # no vertex has more than k incident triangles
        a, b = face[:-k][same], face[k:][same]
        smooth = (normals[a] * normals[b]).sum(axis=1) >= cos_limit
        pairs_a.append(a[smooth])
        pairs_b.append(b[smooth])
        k += 1
    a = np.concatenate(pairs_a) if pairs_a else np.empty(0, np.int64)
    b = np.concatenate(pairs_b) if pairs_b else np.empty(0, np.int64)
    parent = np.arange(n_faces)
    # Min-label propagation with pointer jumping; converges in a few rounds in practice.
    while True:
        lo = np.minimum(parent[a], parent[b])
        before = parent.copy()
        np.minimum.at(parent, a, lo)
        np.minimum.at(parent, b, lo)
        parent = parent[parent]
        if np.array_equal(parent, before):
            break
    _, labels = np.unique(parent, return_inverse=True)
    return labels.astype(np.int32).reshape(-1)


def mesh_sample_points(
    mesh: CadMesh,
    n: int,
    *,
    seed: int | np.random.Generator | None = 0,
    centred: bool = False,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int32]]:
    """Sample ``n`` points uniformly (by area) on the surface.

    Returns ``(points, normals, triangle_ids)``; normals are the exact face normals, so
    point-to-plane ICP needs no normal estimation on the mesh side. With ``centred`` the
    points are relative to :attr:`CadMesh.center` (what ``align`` and ``deviation`` use).
    """
    rng = np.random.default_rng(seed)
    areas = mesh.face_areas()
    tri_ids = rng.choice(mesh.n_triangles, size=int(n), p=areas / areas.sum()).astype(np.int32)
    v = mesh.vertices - mesh.center
    t = mesh.triangles[tri_ids]
    r1 = np.sqrt(rng.random(int(n)))
    r2 = rng.random(int(n))
    points = (
        v[t[:, 0]] * (1.0 - r1)[:, None]
        + v[t[:, 1]] * (r1 * (1.0 - r2))[:, None]
        + v[t[:, 2]] * (r1 * r2)[:, None]
    )
    if not centred:
        points += mesh.center
    return points, np.asarray(mesh.face_normals()[tri_ids]), tri_ids


def _edge_table(
    triangles: npt.NDArray[np.int32],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], bool]:
    t = triangles.astype(np.int64)
    directed = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    undirected = np.sort(directed, axis=1)
    edges, counts = np.unique(undirected, axis=0, return_counts=True)
    _, directed_counts = np.unique(directed, axis=0, return_counts=True)
    consistent = bool((directed_counts == 1).all())
    return edges, counts, consistent


def _longest_edges(mesh: CadMesh) -> npt.NDArray[np.float64]:
    v = mesh.vertices
    t = mesh.triangles
    e0 = np.linalg.norm(v[t[:, 1]] - v[t[:, 0]], axis=1)
    e1 = np.linalg.norm(v[t[:, 2]] - v[t[:, 1]], axis=1)
    e2 = np.linalg.norm(v[t[:, 0]] - v[t[:, 2]], axis=1)
    return np.asarray(np.maximum(np.maximum(e0, e1), e2))


def _parse_stl(raw: bytes) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Parse binary or ASCII STL; a size that disagrees with the facet count is an error."""
    if len(raw) >= _BINARY_STL_HEADER:
        n_facets = int.from_bytes(raw[80:84], "little")
        expected = _BINARY_STL_HEADER + _BINARY_STL_RECORD * n_facets
        if len(raw) == expected:
            if n_facets == 0:
                raise MeshError("mesh has no triangles (binary STL with 0 facets)")
            record = np.dtype(
                [("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attr", "<u2")]
            )
            data = np.frombuffer(raw, dtype=record, count=n_facets, offset=_BINARY_STL_HEADER)
            corners = data["corners"].reshape(-1, 3).astype(np.float64)
            return corners, np.arange(corners.shape[0], dtype=np.int64).reshape(-1, 3)
    else:
        n_facets, expected = -1, -1
    if raw.lstrip()[:5].lower() == b"solid":
        return _parse_ascii_stl(raw)
    if n_facets >= 0:
        raise MeshError(
            f"truncated or corrupt binary STL: header declares {n_facets} facets "
            f"({expected} bytes) but the file has {len(raw)} bytes"
        )
    raise MeshError(f"not an STL file ({len(raw)} bytes, too short for a binary header)")


def _parse_ascii_stl(raw: bytes) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    matches = _ASCII_STL_VERTEX.findall(raw)
    n_facet = len(_ASCII_STL_FACET.findall(raw))
    n_endfacet = len(_ASCII_STL_ENDFACET.findall(raw))
    if not matches and n_facet == 0:
        raise MeshError("mesh has no triangles (ASCII STL without facets)")
    if n_facet != n_endfacet or len(matches) != 3 * n_facet:
        raise MeshError(
            f"corrupt ASCII STL: {n_facet} 'facet', {n_endfacet} 'endfacet' and "
            f"{len(matches)} 'vertex' records (expected 3 per facet)"
        )
    try:
        corners = np.array(matches, dtype=np.float64)
    except ValueError as exc:
        raise MeshError(f"corrupt ASCII STL: non-numeric vertex coordinate ({exc})") from exc
    return corners, np.arange(corners.shape[0], dtype=np.int64).reshape(-1, 3)


def _read_with_open3d(path: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    import open3d as o3d

    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        mesh = o3d.io.read_triangle_mesh(
            str(path), enable_post_processing=False, print_progress=False
        )
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    triangles = np.asarray(mesh.triangles, dtype=np.int64)
    if triangles.size == 0:
        raise MeshError("no triangles could be read (file empty, unreadable or points only)")
    return vertices, triangles


def mesh_winding_number(mesh: CadMesh, points: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Generalised winding number per point: ~1 inside a closed surface, ~0 outside.

    Exact and slow (O(points x triangles)): the reference for the sign of deviations in
    tests and benchmarks, not a production path.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    corners = mesh.vertices[mesh.triangles]
    out = np.empty(pts.shape[0])
    for i, p in enumerate(pts):
        a, b, c = corners[:, 0] - p, corners[:, 1] - p, corners[:, 2] - p
        la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
        num = np.einsum("ij,ij->i", a, np.cross(b, c))
        den = (
            la * lb * lc
            + np.einsum("ij,ij->i", a, b) * lc
            + np.einsum("ij,ij->i", b, c) * la
            + np.einsum("ij,ij->i", c, a) * lb
        )
        out[i] = (2.0 * np.arctan2(num, den)).sum() / (4.0 * np.pi)
    return out
