"""Signed point-to-mesh distance ("deviation") of a scan against its CAD mesh.

Algorithm (exact, multi-threaded with numba, bounded memory):

1. Coordinates are re-centred on the mesh bounding-box centre (a float64 ``offset``) before
   anything else, so UTM-scale inputs lose no precision; all geometry is then done in
   float64 and only the returned distances are rounded to float32.
2. A uniform grid of cubic cells (edge ``h``) covers the mesh plus a band. For every cell
   whose centre ``c`` is within ``band`` of the surface we store the only triangles that
   can be nearest to *any* point of the cell: those with
   ``d(c, T) <= min_T' d(c, T') + 2 r`` (``r`` = half the cell diagonal), sorted by
   ``d(c, T)``. A point ``p`` then walks its cell's list and stops as soon as
   ``d(c, T) - |p - c|`` (a lower bound of ``d(p, T)``) exceeds the best distance found,
   which usually means one to three exact point-triangle tests. This is CloudCompare's
   idea (candidate triangles per octree cell) with a per-cell pruning bound.
3. Points outside the band (outliers, far clutter) take an exact BVH search instead; it is
   about ten times slower per point but gives the same distances.
4. The sign comes from the feature (face, edge or vertex) on which the closest point lies,
   using the pseudo-normal of that feature (Baerentzen & Aanaes 2005): the face normal,
   the sum of the normals of the faces sharing the edge, or the angle-weighted normal of
   the vertex. Ties between triangles at a shared edge or vertex therefore give the same
   sign whichever triangle wins, and no inside/outside ray parity is used, so open meshes
   (CAD of structures) are signed correctly. Near-ties (within ``tie_tolerance``, e.g. a
   T-junction whose edges are not shared, or float32-rounded STL vertices) sum the
   pseudo-normals of all tied features. Positive = the side the triangle normals point to
   (outside for an outward-oriented part), as in CloudCompare's C2M.

Only the inputs and the outputs are per-point arrays; points are processed in chunks (a
chunk is copied only when the input is not float64 C-contiguous).

Costs (2 cores, benchmarks/bench_deviation.py): on the 3,476-triangle benchmark part,
10 M points in ~1.2 s including the index build (~0.1 s), 2.7x CloudCompare 2.11's
C2M_DIST on the same points, identical magnitudes. The index holds ~120 candidate entries
(8 bytes each) per triangle on finely tessellated meshes, so a 1 M-triangle mesh needs
about 1 GB; raw build pairs are streamed by slabs (``_PAIR_BUDGET``). On such meshes the
cells are small, the band is thin in absolute terms and more points take the BVH path:
a 55 k-triangle mesh ran ~3x slower than CloudCompare, which there returned distances up
to 1.8e-3 too large (it missed the nearest triangle); a CloudCompare-style build of the
candidate lists for occupied cells only would remove that gap.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt

from inspections.geometry.mesh import CadMesh

__all__ = [
    "DEFAULT_CHUNK_POINTS",
    "DeviationIndex",
    "DeviationResult",
    "RegionStats",
    "deviation_compute",
    "deviation_region_stats",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
#: squared distance, feature code, closest point x, y, z
Hit = tuple[float, int, float, float, float]
Vec3 = tuple[float, float, float]
#: triangle corners (F, 9), corner indices (F, 3), face normals (F, 3),
#: edge pseudo-normals (F, 3, 3), vertex pseudo-normals (V, 3)
Geometry = tuple[F64, I32, F64, F64, F64]
#: origin (3,), dims (3,), cell start (C,), cell count (C,), candidate triangle, its d(c, T)
Grid = tuple[F64, I64, I64, I32, I32, F32]
#: node min (N, 3), node max (N, 3), triangles per leaf slot (-1 = empty), inner nodes;
#: a complete binary tree in heap layout (children of n: 2n + 1, 2n + 2)
Bvh = tuple[F64, F64, I32, int]

DEFAULT_CHUNK_POINTS = 1 << 20
#: Default cell edge in "triangle sizes" (sqrt of the mean triangle area).
_CELL_TRIANGLE_SIZES = 0.6
_MAX_GRID_CELLS = 1 << 23
#: Raw (cell, triangle) pairs held at once while building (20 bytes each).
_PAIR_BUDGET = 1 << 23
_BVH_LEAF = 4
_BVH_STACK = 64
#: points per parallel work item (one search stack each)
_BLOCK = 1024

# numba's TBB layer complains about an old system TBB and then falls back to OpenMP or
# workqueue by itself; the message is noise for callers.
warnings.filterwarnings("ignore", message=".*TBB threading layer.*", category=nb.NumbaWarning)


@dataclass(frozen=True)
class DeviationResult:
    """Per-point signed distances of a scan to a mesh.

    ``distances[i]`` is the signed distance (model units, float32) of point ``i`` after the
    optional transform; ``triangle_ids[i]`` the index of its nearest triangle in
    ``CadMesh.triangles``; ``offset`` the float64 shift subtracted from every coordinate
    before computing (the mesh bounding-box centre); ``n_fallback`` how many points were
    outside the grid band and took the exact BVH path.
    """

    distances: F32
    triangle_ids: I32
    offset: F64
    n_fallback: int


@dataclass(frozen=True)
class RegionStats:
    """Deviation statistics per region (arrays indexed by region label).

    Regions without points have ``count == 0`` and NaN statistics.
    """

    count: I64
    mean: F64
    rms: F64
    std: F64
    min: F64
    max: F64

    @property
    def n_regions(self) -> int:
        """Number of regions (including empty ones)."""
        return int(self.count.shape[0])


class DeviationIndex:
    """Acceleration structure for one mesh: build once, query many scans.

    Building costs tens of milliseconds for parts of a few thousand triangles. Queries are
    read-only and may run concurrently from several threads.
    """

    def __init__(
        self,
        mesh: CadMesh,
        *,
        cell_size: float | None = None,
        band_cells: float = 1.5,
    ) -> None:
        """Build the grid, its candidate lists, the BVH and the pseudo-normals.

        Args:
            mesh: validated reference mesh.
            cell_size: grid cell edge in model units; by default derived from the model
                size and triangle count.
            band_cells: points whose cell centre is farther than ``band_cells * cell_size``
                from the surface use the (slower, still exact) BVH search.
        """
        self.mesh = mesh
        offset = np.array(mesh.center, dtype=np.float64)
        offset.setflags(write=False)
        self.offset: F64 = offset
        vc = mesh.vertices - offset
        tri = np.ascontiguousarray(mesh.triangles, dtype=np.int32)
        corners = np.ascontiguousarray(vc[tri].reshape(-1, 9))
        fn, en, vn = _pseudo_normals(vc, tri)
        self._geometry: Geometry = (corners, tri, fn, en, vn)
        #: Triangles whose distance is within this of the nearest one are "tied" and their
        #: pseudo-normals are summed for the sign; it absorbs the float32 rounding of STL
        #: vertices, so a T-junction (an edge that is not topologically shared) is signed
        #: as if it were. It never changes the distance, only which side it is on.
        self.tie_tolerance = 1e-6 * mesh.diagonal

        lo = vc.min(axis=0)
        hi = vc.max(axis=0)
        extent = hi - lo
        area = float(mesh.face_areas().sum())
        h = (
            float(cell_size)
            if cell_size is not None
            else _default_cell_size(extent, area, len(tri))
        )
        if not h > 0.0:
            raise ValueError(f"cell_size must be positive, got {cell_size}")
        while True:
            band = band_cells * h
            origin = lo - band - 1e-9 * max(float(extent.max()), 1.0)
            dims = np.floor((hi + band - origin) / h).astype(np.int64) + 1
            if int(np.prod(dims)) <= _MAX_GRID_CELLS:
                break
            h *= 1.25
        self.cell_size = h
        self.band = band
        self._grid: Grid = _grid_build(corners, fn, origin, h, dims, band)
        self._bvh: Bvh = _bvh_build(corners)

    @property
    def n_candidates(self) -> int:
        """Total candidate triangles stored over all cells (memory/speed diagnostics)."""
        return int(self._grid[4].shape[0])

    def query(
        self,
        points: npt.ArrayLike,
        *,
        transform: npt.ArrayLike | None = None,
        chunk_size: int = DEFAULT_CHUNK_POINTS,
    ) -> DeviationResult:
        """Signed distance and nearest triangle of every point.

        Args:
            points: ``(N, 3)`` coordinates in the scan frame (any float dtype; float64
                C-contiguous input is read in place, anything else one chunk at a time).
            transform: optional 4x4 matrix mapping scan to mesh coordinates, applied on
                the fly (in float64, around the offset) so no transformed copy is made.
            chunk_size: points per chunk; bounds the temporary memory.
        """
        pts = np.asarray(points)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"points must have shape (N, 3), got {pts.shape}")
        rot, trans = _split_transform(transform, self.offset)
        n = pts.shape[0]
        step = max(int(chunk_size), 1)
        distances = np.empty(n, dtype=np.float32)
        triangle_ids = np.empty(n, dtype=np.int32)
        n_fallback = 0
        no_rows = np.empty((0, 3))
        for s in range(0, n, step):
            chunk = np.ascontiguousarray(pts[s : s + step], dtype=np.float64)
            n_fallback += _query(
                chunk, rot, trans, self._geometry, self.tie_tolerance, self.cell_size,
                self._grid, self._bvh, distances[s : s + step], triangle_ids[s : s + step],
                no_rows, no_rows,
            )  # fmt: skip
        return DeviationResult(
            distances=distances,
            triangle_ids=triangle_ids,
            offset=np.array(self.offset),
            n_fallback=n_fallback,
        )

    def closest_points(
        self, points: npt.ArrayLike, *, transform: npt.ArrayLike | None = None
    ) -> tuple[F32, I32, F64, F64]:
        """Like :meth:`query` for a modest number of points (one chunk, no streaming),
        also returning the closest points (relative to ``offset``) and the unit normals
        that signed them: ``(distances, triangle_ids, closest, normals)``."""
        pts = np.ascontiguousarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"points must have shape (N, 3), got {pts.shape}")
        rot, trans = _split_transform(transform, self.offset)
        n = pts.shape[0]
        distances = np.empty(n, dtype=np.float32)
        triangle_ids = np.empty(n, dtype=np.int32)
        closest = np.empty((n, 3))
        normals = np.empty((n, 3))
        _query(
            pts, rot, trans, self._geometry, self.tie_tolerance, self.cell_size, self._grid,
            self._bvh, distances, triangle_ids, closest, normals,
        )  # fmt: skip
        return distances, triangle_ids, closest, normals


def deviation_compute(
    mesh: CadMesh,
    points: npt.ArrayLike,
    *,
    transform: npt.ArrayLike | None = None,
    index: DeviationIndex | None = None,
    chunk_size: int = DEFAULT_CHUNK_POINTS,
) -> DeviationResult:
    """Signed point-to-mesh distance of every point (see module docstring).

    Pass a prebuilt ``index`` to reuse it across scans of the same mesh.
    """
    if index is None:
        index = DeviationIndex(mesh)
    elif index.mesh is not mesh:
        raise ValueError("index was built for a different mesh")
    return index.query(points, transform=transform, chunk_size=chunk_size)


def deviation_region_stats(
    result: DeviationResult,
    *,
    regions: npt.ArrayLike | None = None,
    n_regions: int | None = None,
) -> RegionStats:
    """Aggregate deviations per region in one pass (no per-point temporaries).

    Args:
        result: output of :func:`deviation_compute`.
        regions: region label per triangle (e.g. :func:`mesh_face_regions`); by default
            every triangle is its own region.
        n_regions: number of regions; by default ``max(label) + 1``.
    """
    tri_ids = result.triangle_ids
    if regions is None:
        n_tri = int(tri_ids.max()) + 1 if tri_ids.size else 0
        labels = np.arange(max(n_tri, n_regions or 0), dtype=np.int32)
    else:
        labels = np.ascontiguousarray(regions, dtype=np.int32)
    if n_regions is None:
        n_regions = int(labels.max()) + 1 if labels.size else 0
    count, total, total_sq, lo, hi = _region_accumulate(
        result.distances, tri_ids, labels, int(n_regions)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        rms = np.sqrt(total_sq / count)
        std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    empty = count == 0
    lo[empty] = np.nan
    hi[empty] = np.nan
    return RegionStats(count=count, mean=mean, rms=rms, std=std, min=lo, max=hi)


# --------------------------------------------------------------------------- helpers


def _default_cell_size(extent: F64, area: float, n_triangles: int) -> float:
    """About 0.6 triangle sizes, within [L/1024, L/48] (L: longest bounding-box side).

    Measured on the fixture parts and on 4x/16x/64x subdivisions of the benchmark part:
    the candidates tested per point fall from 13.5 to 3.8 when a 55 k triangle mesh goes
    from L/64 to L/256, and L/48-L/96 is a flat optimum for parts of a few thousand.
    """
    longest = float(extent.max())
    if longest <= 0.0:
        return 1.0
    per_triangle = math.sqrt(max(area, 0.0) / max(n_triangles, 1))
    return min(max(_CELL_TRIANGLE_SIZES * per_triangle, longest / 1024), longest / 48)


def _split_transform(transform: npt.ArrayLike | None, offset: F64) -> tuple[F64, F64]:
    """Return (R, t') with p_centred = R p + t' where t' = t - offset."""
    if transform is None:
        return np.eye(3), np.ascontiguousarray(-offset)
    m = np.asarray(transform, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"transform must be 4x4, got {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("transform has non-finite entries")
    return np.ascontiguousarray(m[:3, :3]), np.ascontiguousarray(m[:3, 3] - offset)


def _pseudo_normals(vc: F64, tri: I32) -> tuple[F64, F64, F64]:
    """Face normals (F,3), edge pseudo-normals per face edge (F,3,3), vertex ones (V,3)."""
    t = tri.astype(np.int64)
    a, b, c = vc[t[:, 0]], vc[t[:, 1]], vc[t[:, 2]]
    fn = np.cross(b - a, c - a)
    fn /= np.linalg.norm(fn, axis=1, keepdims=True)

    # Edge e of face f joins corners (e, e+1): AB, BC, CA — the order _closest reports.
    directed = np.stack([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]], axis=1).reshape(-1, 2)
    _, edge_id = np.unique(np.sort(directed, axis=1), axis=0, return_inverse=True)
    edge_id = edge_id.reshape(-1)
    sums = np.zeros((int(edge_id.max()) + 1, 3))
    np.add.at(sums, edge_id, np.repeat(fn, 3, axis=0))
    en = sums[edge_id].reshape(-1, 3, 3)

    vn = np.zeros_like(vc)
    corners = (a, b, c)
    for k in range(3):
        u = corners[(k + 1) % 3] - corners[k]
        w = corners[(k + 2) % 3] - corners[k]
        angle = np.arctan2(np.linalg.norm(np.cross(u, w), axis=1), (u * w).sum(axis=1))
        np.add.at(vn, t[:, k], fn * angle[:, None])
    return np.ascontiguousarray(fn), np.ascontiguousarray(en), np.ascontiguousarray(vn)


def _grid_build(corners: F64, fn: F64, origin: F64, h: float, dims: I64, band: float) -> Grid:
    """Candidate triangles of every cell whose centre is within ``band`` of the surface.

    Raw (cell, triangle) pairs are produced and pruned one slab of cells (along x) at a
    time, so their memory stays under ``_PAIR_BUDGET`` pairs whatever the mesh size; only
    the pruned lists are kept.
    """
    half_diag = h * math.sqrt(3.0) / 2.0
    reach = band + 2.0 * half_diag
    # The slack margin covers the rounding of d(c, T) so pruning never drops the nearest.
    slack = 2.0 * half_diag + 1e-9 * h
    tri_min = np.ascontiguousarray(
        np.minimum(np.minimum(corners[:, 0:3], corners[:, 3:6]), corners[:, 6:9])
    )
    tri_max = np.ascontiguousarray(
        np.maximum(np.maximum(corners[:, 0:3], corners[:, 3:6]), corners[:, 6:9])
    )
    n_x = int(dims[0])
    plane = int(dims[1] * dims[2])
    first = np.clip(np.floor((tri_min[:, 0] - reach - origin[0]) / h), 0, n_x - 1)
    last = np.clip(np.floor((tri_max[:, 0] + reach - origin[0]) / h), 0, n_x - 1)
    # Upper bound of the pairs (cells in each triangle's box grown by ``reach``) sets the
    # slab count without a counting pass over the whole mesh.
    box = np.floor((tri_max + reach - origin) / h) - np.floor((tri_min - reach - origin) / h) + 1
    bound = int(np.minimum(box, dims).prod(axis=1).sum())
    n_slabs = max(1, min(n_x, -(-bound // _PAIR_BUDGET)))
    bounds = np.unique(np.linspace(0, n_x, n_slabs + 1).astype(np.int64))
    starts: list[I64] = []
    counts: list[I32] = []
    lists_tri: list[I32] = []
    lists_dist: list[F32] = []
    total = 0
    for i_lo, i_hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        tris = np.flatnonzero((last >= i_lo) & (first < i_hi)).astype(np.int64)
        offsets = _pair_counts(corners, fn, tris, tri_min, tri_max, origin, h, dims, reach,
                               i_lo, i_hi)  # fmt: skip
        n_pairs = int(offsets[-1])
        pair_cell = np.empty(n_pairs, dtype=np.int64)
        pair_tri = np.empty(n_pairs, dtype=np.int32)
        pair_dist = np.empty(n_pairs, dtype=np.float64)
        _pairs(corners, fn, tris, tri_min, tri_max, origin, h, dims, reach, i_lo, i_hi, offsets,
               pair_cell, pair_tri, pair_dist, True)  # fmt: skip
        start, count, cand_tri, cand_dist = _grid_finish(
            pair_cell, pair_tri, pair_dist, (i_hi - i_lo) * plane, band, slack
        )
        del pair_cell, pair_tri, pair_dist
        starts.append(start + total)
        counts.append(count)
        lists_tri.append(cand_tri)
        lists_dist.append(cand_dist)
        total += cand_tri.shape[0]
    return (
        origin,
        dims,
        np.concatenate(starts),
        np.concatenate(counts),
        np.concatenate(lists_tri),
        np.concatenate(lists_dist),
    )


def _pair_counts(
    corners: F64,
    fn: F64,
    tris: I64,
    tri_min: F64,
    tri_max: F64,
    origin: F64,
    h: float,
    dims: I64,
    reach: float,
    i_lo: int,
    i_hi: int,
) -> I64:
    """Prefix sums of the pair counts of ``tris`` in the slab (``offsets`` for ``_pairs``)."""
    offsets = np.zeros(tris.shape[0] + 1, dtype=np.int64)
    none = np.empty(0, dtype=np.int64)
    _pairs(corners, fn, tris, tri_min, tri_max, origin, h, dims, reach, i_lo, i_hi, offsets,
           none, none.astype(np.int32), none.astype(np.float64), False)  # fmt: skip
    np.cumsum(offsets, out=offsets)
    return offsets


def _bvh_build(corners: F64) -> Bvh:
    """Linear BVH: triangles in Morton order of their centroids, ``_BVH_LEAF`` per leaf,
    a complete binary tree of boxes built bottom-up (numpy only, O(F log F))."""
    n_tri = corners.shape[0]
    tri_min = np.minimum(np.minimum(corners[:, 0:3], corners[:, 3:6]), corners[:, 6:9])
    tri_max = np.maximum(np.maximum(corners[:, 0:3], corners[:, 3:6]), corners[:, 6:9])
    centroid = (tri_min + tri_max) / 2.0
    lo = centroid.min(axis=0)
    span = np.maximum(centroid.max(axis=0) - lo, np.finfo(np.float64).tiny)
    cells = np.minimum(((centroid - lo) / span * 1024.0).astype(np.int64), 1023)
    code = np.zeros(n_tri, dtype=np.int64)
    for bit in range(10):
        for axis in range(3):
            code |= ((cells[:, axis] >> bit) & 1) << (3 * bit + (2 - axis))
    n_leaves = 1 << (-(-n_tri // _BVH_LEAF) - 1).bit_length()  # next power of two
    n_inner = n_leaves - 1
    order = np.full(n_leaves * _BVH_LEAF, -1, dtype=np.int32)
    order[:n_tri] = np.argsort(code, kind="stable")
    slot_min = np.full((n_leaves * _BVH_LEAF, 3), np.inf)
    slot_max = np.full((n_leaves * _BVH_LEAF, 3), -np.inf)
    slot_min[:n_tri] = tri_min[order[:n_tri]]
    slot_max[:n_tri] = tri_max[order[:n_tri]]
    node_min = np.empty((n_inner + n_leaves, 3))
    node_max = np.empty((n_inner + n_leaves, 3))
    node_min[n_inner:] = slot_min.reshape(n_leaves, _BVH_LEAF, 3).min(axis=1)
    node_max[n_inner:] = slot_max.reshape(n_leaves, _BVH_LEAF, 3).max(axis=1)
    first = n_inner
    while first > 0:
        parent = (first - 1) // 2
        node_min[parent:first] = np.minimum(
            node_min[first::2][: first - parent], node_min[first + 1 :: 2][: first - parent]
        )
        node_max[parent:first] = np.maximum(
            node_max[first::2][: first - parent], node_max[first + 1 :: 2][: first - parent]
        )
        first = parent
    return node_min, node_max, order, n_inner


# --------------------------------------------------------------------------- numba kernels
# Kernels are compiled on first use and cached next to this file (``cache=True``).


@nb.njit(inline="always", cache=True)
def _closest(px: float, py: float, pz: float, T: F64, t: int) -> Hit:
    """Closest point on triangle ``t`` (Ericson, RTCD 5.1.5) and its feature.

    Feature: 0 face interior; 1, 2, 3 vertex A, B, C; 4, 5, 6 edge AB, BC, CA.
    """
    ax = T[t, 0]
    ay = T[t, 1]
    az = T[t, 2]
    bx = T[t, 3]
    by = T[t, 4]
    bz = T[t, 5]
    cx = T[t, 6]
    cy = T[t, 7]
    cz = T[t, 8]
    abx = bx - ax
    aby = by - ay
    abz = bz - az
    acx = cx - ax
    acy = cy - ay
    acz = cz - az
    apx = px - ax
    apy = py - ay
    apz = pz - az
    d1 = abx * apx + aby * apy + abz * apz
    d2 = acx * apx + acy * apy + acz * apz
    if d1 <= 0.0 and d2 <= 0.0:
        return apx * apx + apy * apy + apz * apz, 1, ax, ay, az
    bpx = px - bx
    bpy = py - by
    bpz = pz - bz
    d3 = abx * bpx + aby * bpy + abz * bpz
    d4 = acx * bpx + acy * bpy + acz * bpz
    if d3 >= 0.0 and d4 <= d3:
        return bpx * bpx + bpy * bpy + bpz * bpz, 2, bx, by, bz
    vc = d1 * d4 - d3 * d2
    if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
        v = d1 / (d1 - d3)
        qx = ax + v * abx
        qy = ay + v * aby
        qz = az + v * abz
        dx = px - qx
        dy = py - qy
        dz = pz - qz
        return dx * dx + dy * dy + dz * dz, 4, qx, qy, qz
    cpx = px - cx
    cpy = py - cy
    cpz = pz - cz
    d5 = abx * cpx + aby * cpy + abz * cpz
    d6 = acx * cpx + acy * cpy + acz * cpz
    if d6 >= 0.0 and d5 <= d6:
        return cpx * cpx + cpy * cpy + cpz * cpz, 3, cx, cy, cz
    vb = d5 * d2 - d1 * d6
    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
        w = d2 / (d2 - d6)
        qx = ax + w * acx
        qy = ay + w * acy
        qz = az + w * acz
        dx = px - qx
        dy = py - qy
        dz = pz - qz
        return dx * dx + dy * dy + dz * dz, 6, qx, qy, qz
    va = d3 * d6 - d5 * d4
    if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
        w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        qx = bx + w * (cx - bx)
        qy = by + w * (cy - by)
        qz = bz + w * (cz - bz)
        dx = px - qx
        dy = py - qy
        dz = pz - qz
        return dx * dx + dy * dy + dz * dz, 5, qx, qy, qz
    denom = 1.0 / (va + vb + vc)
    v = vb * denom
    w = vc * denom
    qx = ax + abx * v + acx * w
    qy = ay + aby * v + acy * w
    qz = az + abz * v + acz * w
    dx = px - qx
    dy = py - qy
    dz = pz - qz
    return dx * dx + dy * dy + dz * dz, 0, qx, qy, qz


@nb.njit(inline="always", cache=True)
def _feature_normal(t: int, feature: int, tri: I32, fn: F64, en: F64, vn: F64) -> Vec3:
    """Pseudo-normal of the closest feature of triangle ``t`` (see ``_closest``)."""
    if feature == 0:
        return fn[t, 0], fn[t, 1], fn[t, 2]
    if feature <= 3:
        v = tri[t, feature - 1]
        return vn[v, 0], vn[v, 1], vn[v, 2]
    e = feature - 4
    return en[t, e, 0], en[t, e, 1], en[t, e, 2]


@nb.njit(inline="always", cache=True)
def _signed(p: Vec3, best: float, t: int, q: Vec3, n: Vec3, fn: F64) -> float:
    """Sign ``best`` with the (summed) pseudo-normal ``n`` of the tied closest features."""
    dx = p[0] - q[0]
    dy = p[1] - q[1]
    dz = p[2] - q[2]
    dot = dx * n[0] + dy * n[1] + dz * n[2]
    if dot == 0.0:
        # Pseudo-normals cancelled (inconsistent winding, knife edge): use the face.
        dot = dx * fn[t, 0] + dy * fn[t, 1] + dz * fn[t, 2]
    return -best if dot < 0.0 else best


@nb.njit(inline="always", cache=True)
def _transform_point(P: F64, i: int, rot: F64, trans: F64) -> Vec3:
    x = P[i, 0]
    y = P[i, 1]
    z = P[i, 2]
    return (
        rot[0, 0] * x + rot[0, 1] * y + rot[0, 2] * z + trans[0],
        rot[1, 0] * x + rot[1, 1] * y + rot[1, 2] * z + trans[1],
        rot[2, 0] * x + rot[2, 1] * y + rot[2, 2] * z + trans[2],
    )


@nb.njit(inline="always", cache=True)
def _cell_range(lo: float, hi: float, reach: float, o: float, h: float, n: int) -> tuple[int, int]:
    return max(math.floor((lo - reach - o) / h), 0), min(math.floor((hi + reach - o) / h), n - 1)


@nb.njit(parallel=True, cache=True)
def _pairs(
    T: F64,
    fn: F64,
    tris: I64,
    tmin: F64,
    tmax: F64,
    origin: F64,
    h: float,
    dims: I64,
    reach: float,
    i_lo: int,
    i_hi: int,
    offsets: I64,
    pair_cell: I64,
    pair_tri: I32,
    pair_dist: F64,
    fill: bool,
) -> None:
    """(cell, triangle, d(cell centre, triangle)) pairs within ``reach``, for the triangles
    ``tris`` and the slab of cells ``i_lo <= i < i_hi`` (cell ids relative to the slab).

    Run twice: ``fill=False`` stores the pair count of ``tris[w]`` in ``offsets[w + 1]``;
    after a prefix sum, ``fill=True`` writes the pairs from ``offsets[w]`` on.
    """
    r2 = reach * reach
    for w in nb.prange(tris.shape[0]):
        t = tris[w]
        i0, i1 = _cell_range(tmin[t, 0], tmax[t, 0], reach, origin[0], h, dims[0])
        j0, j1 = _cell_range(tmin[t, 1], tmax[t, 1], reach, origin[1], h, dims[1])
        k0, k1 = _cell_range(tmin[t, 2], tmax[t, 2], reach, origin[2], h, dims[2])
        c = offsets[w] if fill else 0
        nx = fn[t, 0]
        ny = fn[t, 1]
        nz = fn[t, 2]
        plane = nx * T[t, 0] + ny * T[t, 1] + nz * T[t, 2]
        for i in range(max(i0, i_lo), min(i1, i_hi - 1) + 1):
            x = origin[0] + (i + 0.5) * h
            for j in range(j0, j1 + 1):
                y = origin[1] + (j + 0.5) * h
                for k in range(k0, k1 + 1):
                    z = origin[2] + (k + 0.5) * h
                    if abs(nx * x + ny * y + nz * z - plane) > reach:
                        continue  # cheap reject: farther from the plane than ``reach``
                    d2 = _closest(x, y, z, T, t)[0]
                    if d2 <= r2:
                        if fill:
                            pair_cell[c] = ((i - i_lo) * dims[1] + j) * dims[2] + k
                            pair_tri[c] = t
                            pair_dist[c] = math.sqrt(d2)
                        c += 1
        if not fill:
            offsets[w + 1] = c


@nb.njit(cache=True)
def _grid_finish(
    pair_cell: I64, pair_tri: I32, pair_dist: F64, n_cells: int, band: float, slack: float
) -> tuple[I64, I32, I32, F32]:
    """Bucket pairs by cell, keep per cell the triangles that can be nearest to a point of
    it (``d <= d_min + slack``; none when ``d_min > band``), sort them by ``d``, compact."""
    start = np.zeros(n_cells + 1, np.int64)
    for i in range(pair_cell.shape[0]):
        start[pair_cell[i] + 1] += 1
    for i in range(n_cells):
        start[i + 1] += start[i]
    pos = start[:-1].copy()
    tri = np.empty(pair_tri.shape[0], np.int32)
    dist = np.empty(pair_tri.shape[0], np.float64)
    for i in range(pair_cell.shape[0]):
        c = pair_cell[i]
        tri[pos[c]] = pair_tri[i]
        dist[pos[c]] = pair_dist[i]
        pos[c] += 1
    count = np.zeros(n_cells, np.int32)
    w = 0
    for c in range(n_cells):
        s = start[c]
        e = start[c + 1]
        start[c] = w
        if e == s:
            continue
        dmin = np.inf
        for q in range(s, e):
            dmin = min(dmin, dist[q])
        if dmin > band:
            continue
        limit = dmin + slack
        first = w
        for q in range(s, e):  # w <= q always: in-place compaction is safe
            if dist[q] <= limit:
                kd = dist[q]
                kt = tri[q]
                b = w - 1
                while b >= first and dist[b] > kd:  # insertion sort: lists are short
                    dist[b + 1] = dist[b]
                    tri[b + 1] = tri[b]
                    b -= 1
                dist[b + 1] = kd
                tri[b + 1] = kt
                w += 1
        count[c] = w - first
    # float32 halves the lists' memory; scaling down first keeps each value a lower bound.
    low = np.empty(w, np.float32)
    for q in range(w):
        low[q] = np.float32(dist[q] * (1.0 - 2.0**-22))
    return start[:-1].copy(), count, tri[:w].copy(), low


#: search state: best distance, (best + tie)^2, triangle, closest point, summed normal
State = tuple[float, float, int, float, float, float, float, float, float]


@nb.njit(inline="always", cache=True)
def _consider(p: Vec3, t: int, st: State, geometry: Geometry, tie: float) -> State:
    """Update the search state with triangle ``t`` (ties sum their pseudo-normals)."""
    T, tri, fn, en, vn = geometry
    d2, f, qx, qy, qz = _closest(p[0], p[1], p[2], T, t)
    if d2 > st[1]:
        return st
    fx, fy, fz = _feature_normal(t, f, tri, fn, en, vn)
    d = math.sqrt(d2)
    best = st[0]
    if d < best - tie:
        nx, ny, nz = fx, fy, fz
    else:
        nx, ny, nz = st[6] + fx, st[7] + fy, st[8] + fz
    if d < best:
        return (d, (d + tie) * (d + tie), t, qx, qy, qz, nx, ny, nz)
    return (best, st[1], st[2], st[3], st[4], st[5], nx, ny, nz)


@nb.njit(inline="always", cache=True)
def _box_dist2(p: Vec3, bmin: F64, bmax: F64, n: int) -> float:
    dx = max(bmin[n, 0] - p[0], 0.0, p[0] - bmax[n, 0])
    dy = max(bmin[n, 1] - p[1], 0.0, p[1] - bmax[n, 1])
    dz = max(bmin[n, 2] - p[2], 0.0, p[2] - bmax[n, 2])
    return dx * dx + dy * dy + dz * dz


@nb.njit(parallel=True, cache=True)
def _query(
    P: F64,
    rot: F64,
    trans: F64,
    geometry: Geometry,
    tie: float,
    h: float,
    grid: Grid,
    bvh: Bvh,
    out_d: F32,
    out_t: I32,
    out_q: F64,
    out_n: F64,
) -> int:
    """Nearest triangle and signed distance of every point; returns the BVH-path count.

    When ``out_q`` has rows it also receives the closest points (centred frame) and
    ``out_n`` the unit pseudo-normal used for the sign (what point-to-plane ICP needs).
    """
    origin, dims, start, count, cand_tri, cand_dist = grid
    bmin, bmax, order, n_inner = bvh
    fn = geometry[2]
    inv_h = 1.0 / h
    n_fallback = 0
    n_blocks = (P.shape[0] + _BLOCK - 1) // _BLOCK
    for blk in nb.prange(n_blocks):
        stack = np.empty(_BVH_STACK, np.int64)
        for i in range(blk * _BLOCK, min((blk + 1) * _BLOCK, P.shape[0])):
            p = _transform_point(P, i, rot, trans)
            st = (np.inf, np.inf, np.int64(-1), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
            fi = (p[0] - origin[0]) * inv_h
            fj = (p[1] - origin[1]) * inv_h
            fk = (p[2] - origin[2]) * inv_h
            m = 0
            cell = 0
            ci = 0
            cj = 0
            ck = 0
            if fi >= 0.0 and fj >= 0.0 and fk >= 0.0:
                if fi < dims[0] and fj < dims[1] and fk < dims[2]:
                    ci = int(fi)
                    cj = int(fj)
                    ck = int(fk)
                    cell = (ci * dims[1] + cj) * dims[2] + ck
                    m = count[cell]
            if m > 0:
                ex = p[0] - (origin[0] + (ci + 0.5) * h)
                ey = p[1] - (origin[1] + (cj + 0.5) * h)
                ez = p[2] - (origin[2] + (ck + 0.5) * h)
                to_centre = math.sqrt(ex * ex + ey * ey + ez * ez)
                s = start[cell]
                for q in range(s, s + m):
                    if cand_dist[q] - to_centre > st[0] + tie:
                        break  # the lower bound of every remaining candidate is beaten
                    st = _consider(p, np.int64(cand_tri[q]), st, geometry, tie)
            else:
                n_fallback += 1
                stack[0] = 0
                sp = 1
                while sp > 0:
                    sp -= 1
                    node = stack[sp]
                    if _box_dist2(p, bmin, bmax, node) > st[1]:
                        continue
                    if node < n_inner:
                        a = 2 * node + 1
                        b = a + 1
                        if _box_dist2(p, bmin, bmax, a) > _box_dist2(p, bmin, bmax, b):
                            a, b = b, a
                        stack[sp] = b
                        stack[sp + 1] = a
                        sp += 2
                        continue
                    leaf = node - n_inner
                    for q in range(leaf * _BVH_LEAF, (leaf + 1) * _BVH_LEAF):
                        if order[q] >= 0:
                            st = _consider(p, np.int64(order[q]), st, geometry, tie)
            out_d[i] = _signed(p, st[0], st[2], (st[3], st[4], st[5]), (st[6], st[7], st[8]), fn)
            out_t[i] = st[2]
            if out_q.shape[0] > 0:
                out_q[i, 0] = st[3]
                out_q[i, 1] = st[4]
                out_q[i, 2] = st[5]
                norm = math.sqrt(st[6] * st[6] + st[7] * st[7] + st[8] * st[8])
                if norm == 0.0:
                    out_n[i, 0] = fn[st[2], 0]
                    out_n[i, 1] = fn[st[2], 1]
                    out_n[i, 2] = fn[st[2], 2]
                else:
                    out_n[i, 0] = st[6] / norm
                    out_n[i, 1] = st[7] / norm
                    out_n[i, 2] = st[8] / norm
    return n_fallback


@nb.njit(cache=True)
def _region_accumulate(
    distances: F32, tri_ids: I32, labels: I32, n_regions: int
) -> tuple[I64, F64, F64, F64, F64]:
    count = np.zeros(n_regions, np.int64)
    total = np.zeros(n_regions)
    total_sq = np.zeros(n_regions)
    lo = np.full(n_regions, np.inf)
    hi = np.full(n_regions, -np.inf)
    for i in range(distances.shape[0]):
        t = tri_ids[i]
        if t < 0 or t >= labels.shape[0]:
            continue
        r = labels[t]
        d = np.float64(distances[i])
        count[r] += 1
        total[r] += d
        total_sq[r] += d * d
        lo[r] = min(lo[r], d)
        hi[r] = max(hi[r], d)
    return count, total, total_sq, lo, hi
