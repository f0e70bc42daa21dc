"""Rigid registration of a scan onto its CAD mesh.

Pipeline (:func:`scan_align`):

1. Re-centre: the mesh on its bounding-box centre, the scan on its own centroid, both in
   float64, so UTM-scale coordinates cost no precision; the result is mapped back.
2. Start from the edge device's 4x4 transform when given, otherwise from a coarse global
   registration (FPFH features + RANSAC on a coarse voxel grid).
3. Refine with point-to-plane ICP and a robust kernel (Tukey by default), coarse to fine
   over decreasing voxel sizes. The target is sampled on the mesh with its *exact* face
   normals, so no normal is ever estimated for ICP (normal estimation on a million scan
   points costs more than the ICP itself). The scan is randomly thinned to
   ``max_points`` first so memory stays bounded whatever the scan size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import open3d as o3d

from inspections.geometry.deviation import DeviationIndex
from inspections.geometry.mesh import CadMesh, mesh_sample_points

__all__ = ["AlignmentResult", "IcpLevel", "scan_align"]

F64 = npt.NDArray[np.float64]
RobustKernelName = Literal["tukey", "huber", "none"]

#: Default coarse-to-fine voxel sizes as fractions of the mesh bounding-box diagonal.
DEFAULT_VOXEL_FRACTIONS = (1 / 40, 1 / 80, 1 / 160)
#: Max correspondence distance and robust-kernel scale, in voxels of the level.
CORRESPONDENCE_VOXELS = 3.0
KERNEL_VOXELS = 1.5
_TARGET_POINTS_PER_VOXEL_AREA = 4.0


@dataclass(frozen=True)
class IcpLevel:
    """One level of the coarse-to-fine ICP."""

    voxel_size: float
    max_correspondence_distance: float
    source_points: int
    target_points: int
    iterations: int
    fitness: float
    inlier_rmse: float


@dataclass(frozen=True)
class AlignmentResult:
    """Outcome of :func:`scan_align`.

    ``transform`` (4x4, float64, read-only) maps scan coordinates to mesh coordinates.
    ``fitness`` is the fraction of the finest-level (voxel-downsampled) scan points whose
    exact distance to the mesh is within the finest max correspondence distance, and
    ``inlier_rmse`` the RMS of those distances (model units); ``iterations`` the ICP
    iterations summed over levels; ``initial`` where the start came from ("global": the
    best-scoring of the centroid, PCA and FPFH + RANSAC hypotheses after a coarse ICP).
    """

    transform: F64
    fitness: float
    inlier_rmse: float
    iterations: int
    initial: Literal["given", "global"]
    levels: tuple[IcpLevel, ...]


def scan_align(
    points: npt.ArrayLike,
    mesh: CadMesh,
    *,
    init: npt.ArrayLike | None = None,
    voxel_sizes: tuple[float, ...] | None = None,
    kernel: RobustKernelName = "tukey",
    max_iterations: int = 30,
    max_points: int = 1_000_000,
    seed: int = 0,
) -> AlignmentResult:
    """Register a scan (``(N, 3)``, scan frame) onto ``mesh`` (see module docstring).

    Args:
        points: scan coordinates; only ``max_points`` of them are read.
        mesh: the reference mesh.
        init: 4x4 scan-to-mesh transform to start from (e.g. the edge device's); when
            omitted a global FPFH + RANSAC registration provides the start.
        voxel_sizes: decreasing ICP voxel sizes in model units; by default
            ``DEFAULT_VOXEL_FRACTIONS`` of the mesh diagonal.
        kernel: robust kernel of the point-to-plane residual.
        max_iterations: ICP iterations cap per level.
        max_points: random subset of the scan used for registration.
        seed: makes sampling and RANSAC reproducible.
    """
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] < 3:
        raise ValueError(f"points must have shape (N >= 3, 3), got {pts.shape}")
    rng = np.random.default_rng(seed)
    o3d.utility.random.seed(seed)
    if voxel_sizes is None:
        voxel_sizes = tuple(mesh.diagonal * f for f in DEFAULT_VOXEL_FRACTIONS)
    if list(voxel_sizes) != sorted(voxel_sizes, reverse=True) or min(voxel_sizes) <= 0:
        raise ValueError(f"voxel_sizes must be positive and decreasing, got {voxel_sizes}")

    if pts.shape[0] > max_points:
        idx = np.sort(rng.integers(0, pts.shape[0], size=max_points))
        subset = np.asarray(pts[idx], dtype=np.float64)
    else:
        subset = np.array(pts, dtype=np.float64)
    finite = np.isfinite(subset).all(axis=1)
    subset = subset[finite]
    if subset.shape[0] < 3:
        raise ValueError("scan has fewer than 3 finite points")
    scan_offset = subset.mean(axis=0)
    subset -= scan_offset
    mesh_offset = mesh.center

    index = DeviationIndex(mesh)
    source_all = o3d.t.geometry.PointCloud(o3d.core.Tensor(subset))
    area = float(mesh.face_areas().sum())
    levels: list[IcpLevel] = []
    if init is not None:
        current = _to_centred(np.asarray(init, dtype=np.float64), scan_offset, mesh_offset)
        initial: Literal["given", "global"] = "given"
        first = 0
    else:
        initial = "global"
        best: tuple[float, F64, IcpLevel] | None = None
        for start in _candidate_starts(subset, mesh, voxel_sizes[0], rng):
            moved, level, score = _icp_level(
                source_all, mesh, index, area, voxel_sizes[0], start, kernel, max_iterations, rng
            )
            if best is None or score < best[0]:
                best = (score, moved, level)
        assert best is not None
        current = best[1]
        levels.append(best[2])
        first = 1

    for voxel in voxel_sizes[first:]:
        current, level, _ = _icp_level(
            source_all, mesh, index, area, voxel, current, kernel, max_iterations, rng
        )
        levels.append(level)

    transform = _from_centred(current, scan_offset, mesh_offset)
    transform.setflags(write=False)
    return AlignmentResult(
        transform=transform,
        fitness=levels[-1].fitness,
        inlier_rmse=levels[-1].inlier_rmse,
        iterations=sum(level.iterations for level in levels),
        initial=initial,
        levels=tuple(levels),
    )


def _icp_level(
    source_all: o3d.t.geometry.PointCloud,
    mesh: CadMesh,
    index: DeviationIndex,
    area: float,
    voxel: float,
    start: F64,
    kernel: RobustKernelName,
    max_iterations: int,
    rng: np.random.Generator,
) -> tuple[F64, IcpLevel, float]:
    """One ICP level in centred frames; returns (transform, level report, score).

    Fitness and RMSE are measured against the exact mesh (not the sampled target), and
    the score (lower is better) is the mean point-to-mesh distance capped at the max
    correspondence distance, which ranks start hypotheses.
    """
    reg = o3d.t.pipelines.registration
    source = source_all.voxel_down_sample(voxel)
    n_target = int(np.clip(_TARGET_POINTS_PER_VOXEL_AREA * area / voxel**2, 5_000, 400_000))
    target_pts, target_nrm, _ = mesh_sample_points(mesh, n_target, seed=rng, centred=True)
    target = o3d.t.geometry.PointCloud(o3d.core.Tensor(target_pts))
    target.point.normals = o3d.core.Tensor(target_nrm)
    max_corr = CORRESPONDENCE_VOXELS * voxel
    result = reg.icp(
        source,
        target,
        max_corr,
        o3d.core.Tensor(start),
        reg.TransformationEstimationPointToPlane(_robust_kernel(kernel, KERNEL_VOXELS * voxel)),
        reg.ICPConvergenceCriteria(
            relative_fitness=1e-6, relative_rmse=1e-6, max_iteration=int(max_iterations)
        ),
    )
    moved = result.transformation.numpy().astype(np.float64)
    to_world = moved.copy()
    to_world[:3, 3] += mesh.center
    src = source.point.positions.numpy()
    dist = np.abs(index.query(src, transform=to_world).distances.astype(np.float64))
    inliers = dist <= max_corr
    fitness = float(inliers.mean())
    rmse = float(np.sqrt(np.mean(dist[inliers] ** 2))) if inliers.any() else float("inf")
    score = float(np.minimum(dist, max_corr).mean())
    level = IcpLevel(
        voxel_size=float(voxel),
        max_correspondence_distance=float(max_corr),
        source_points=int(src.shape[0]),
        target_points=n_target,
        iterations=int(result.num_iterations),
        fitness=fitness,
        inlier_rmse=rmse,
    )
    return moved, level, score


def _to_centred(transform: F64, scan_offset: F64, mesh_offset: F64) -> F64:
    """World transform T (p_mesh = R p_scan + t) to centred frames (p' = p - offset)."""
    if transform.shape != (4, 4) or not np.isfinite(transform).all():
        raise ValueError("init must be a finite 4x4 matrix")
    out = np.eye(4)
    rot = transform[:3, :3]
    out[:3, :3] = rot
    out[:3, 3] = rot @ scan_offset + transform[:3, 3] - mesh_offset
    return out


def _from_centred(transform: F64, scan_offset: F64, mesh_offset: F64) -> F64:
    out = np.eye(4)
    rot = transform[:3, :3]
    out[:3, :3] = rot
    out[:3, 3] = transform[:3, 3] - rot @ scan_offset + mesh_offset
    return out


def _robust_kernel(
    name: RobustKernelName, scale: float
) -> o3d.t.pipelines.registration.RobustKernel:
    methods = o3d.t.pipelines.registration.robust_kernel.RobustKernelMethod
    method = {
        "tukey": methods.TukeyLoss,
        "huber": methods.HuberLoss,
        "none": methods.L2Loss,
    }[name]
    return o3d.t.pipelines.registration.robust_kernel.RobustKernel(method, scale)


def _candidate_starts(
    centred_scan: F64, mesh: CadMesh, voxel: float, rng: np.random.Generator
) -> list[F64]:
    """Start hypotheses in centred frames: centroids matched, PCA frames, FPFH + RANSAC.

    FPFH alone is unreliable on CAD parts with near-symmetries (it happily returns the
    part flipped by 180 degrees), PCA alone on partial scans; scoring all of them after a
    coarse ICP keeps whichever fits.
    """
    starts = [np.eye(4)]
    area = float(mesh.face_areas().sum())
    n_target = int(np.clip(_TARGET_POINTS_PER_VOXEL_AREA * area / voxel**2, 5_000, 200_000))
    target_pts, target_nrm, _ = mesh_sample_points(mesh, n_target, seed=rng, centred=True)

    scan_axes = _principal_axes(centred_scan)
    mesh_axes = _principal_axes(target_pts)
    for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        flip = np.diag([sx, sy, sx * sy])
        start = np.eye(4)
        start[:3, :3] = mesh_axes @ flip @ scan_axes.T
        start[:3, 3] = target_pts.mean(axis=0) - start[:3, :3] @ centred_scan.mean(axis=0)
        starts.append(start)

    reg = o3d.pipelines.registration
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        source = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(centred_scan))
        source = source.voxel_down_sample(voxel)
        source.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2.5 * voxel, max_nn=30))
        target = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(target_pts))
        target.normals = o3d.utility.Vector3dVector(target_nrm)
        target = target.voxel_down_sample(voxel)
        feature_param = o3d.geometry.KDTreeSearchParamHybrid(radius=5.0 * voxel, max_nn=100)
        source_fpfh = reg.compute_fpfh_feature(source, feature_param)
        target_fpfh = reg.compute_fpfh_feature(target, feature_param)
        distance = 1.5 * voxel
        result = reg.registration_ransac_based_on_feature_matching(
            source,
            target,
            source_fpfh,
            target_fpfh,
            True,
            distance,
            reg.TransformationEstimationPointToPoint(False),
            3,
            [
                reg.CorrespondenceCheckerBasedOnEdgeLength(0.9),
                reg.CorrespondenceCheckerBasedOnDistance(distance),
            ],
            reg.RANSACConvergenceCriteria(100_000, 0.999),
        )
    starts.append(np.asarray(result.transformation, dtype=np.float64).copy())
    return starts


def _principal_axes(points: F64) -> F64:
    """Columns = principal axes (largest variance first), right-handed."""
    centred = points - points.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    axes = vectors[:, ::-1].copy()
    if np.linalg.det(axes) < 0:
        axes[:, 2] = -axes[:, 2]
    return axes
