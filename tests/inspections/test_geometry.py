"""Known-truth tests of the scan-vs-CAD numeric core (``inspections.geometry``).

Scans are synthesised from a real CAD part (tests/fixtures/cad, trimesh project, MIT):
points sampled on the surface, a dent and a bulge of known depth in known regions,
Gaussian noise, and a random rigid misalignment. Registration must undo the
misalignment, and the deviation must find the dent and bulge where and as deep as they
were made, with the right sign, at the origin as at UTM coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from inspections.geometry.align import AlignmentResult, scan_align
from inspections.geometry.deviation import (
    DeviationIndex,
    deviation_compute,
    deviation_region_stats,
)
from inspections.geometry.mesh import (
    CadMesh,
    MeshError,
    mesh_face_regions,
    mesh_from_arrays,
    mesh_inspect,
    mesh_load,
    mesh_sample_points,
    mesh_winding_number,
)

F64 = npt.NDArray[np.float64]

CAD = Path(__file__).resolve().parents[1] / "fixtures" / "cad"
PART = CAD / "featuretype.STL"  # 5 x 2.5 x 1.375, 3,476 triangles, open (T-junctions)
CLOSED = CAD / "busted.STL"  # watertight, curved, 3,878 triangles
EMPTY = CAD / "empty.stl"
UTM = np.array([500_000.0, 5_000_000.0, 100.0])

NOISE = 0.002
DENT_DEPTH = 0.03
BULGE_HEIGHT = 0.02
RADIUS = 0.3
# Both discs lie inside one CAD face with solid material behind it (no pocket within
# twice the depth), so the nearest surface of every defect point is the face itself.
DENT_CENTRE = np.array([-1.0, 0.0, 0.0])  # on the bottom face
BULGE_CENTRE = np.array([1.8, -1.25, 0.4])  # on the -y wall
MISALIGN_DEG = 3.0
MISALIGN_SHIFT = 0.04
MAX_ROT_ERR_DEG = 0.01
MAX_SHIFT_ERR = 2e-4


def rotation(axis: F64, degrees: float) -> F64:
    """Rodrigues rotation matrix."""
    k = axis / np.linalg.norm(axis)
    skew = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    a = np.deg2rad(degrees)
    return np.eye(3) + np.sin(a) * skew + (1.0 - np.cos(a)) * skew @ skew


def rigid(rng: np.random.Generator, degrees: float, shift: float) -> F64:
    """Random rigid transform: ``degrees`` about a random axis, ``shift`` in a random direction."""
    m = np.eye(4)
    m[:3, :3] = rotation(rng.normal(size=3), degrees)
    direction = rng.normal(size=3)
    m[:3, 3] = shift * direction / np.linalg.norm(direction)
    return m


def apply(m: F64, points: F64) -> F64:
    return np.asarray(points @ m[:3, :3].T + m[:3, 3])


def transform_error(estimate: F64, truth: F64, at: F64) -> tuple[float, float]:
    """Rotation error (degrees) and how far ``estimate`` puts the point ``at`` (scan frame,
    e.g. the scan centroid) from where ``truth`` puts it. Measuring the shift at the part,
    not at the coordinate origin, keeps the metric meaningful at UTM coordinates."""
    rot = estimate[:3, :3] @ truth[:3, :3].T
    cos = np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0)
    shift = apply(estimate, at[None, :]) - apply(truth, at[None, :])
    return float(np.degrees(np.arccos(cos))), float(np.linalg.norm(shift))


def region_at(mesh: CadMesh, labels: npt.NDArray[np.int32], point: F64) -> int:
    tri = deviation_compute(mesh, point[None, :]).triangle_ids[0]
    return int(labels[tri])


BOX_VERTICES = np.array(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]],
    dtype=np.float64,
)
BOX_FACES = np.array(
    [
        [0, 2, 1], [0, 3, 2],  # z = 0
        [0, 1, 5], [0, 5, 4],  # y = 0
        [1, 2, 6], [1, 6, 5],  # x = 1
        [2, 3, 7], [2, 7, 6],  # y = 1
        [3, 0, 4], [3, 4, 7],  # x = 0
        [4, 5, 6], [4, 6, 7],  # z = 1
    ]
)  # fmt: skip


def box_mesh(*, open_top: bool = False) -> CadMesh:
    """Unit cube [0, 1]^3 with outward normals; ``open_top`` drops the two z = 1 triangles."""
    return mesh_from_arrays(BOX_VERTICES, BOX_FACES[:-2] if open_top else BOX_FACES)


def wedge_mesh(half_angle_deg: float = 10.0) -> CadMesh:
    """Closed prism whose cross-section has a sharp 20-degree apex at x = 1."""
    t = np.tan(np.deg2rad(half_angle_deg))
    section = [(1.0, 0.0), (0.0, t), (0.0, -t)]  # counter-clockwise
    v = np.array([(x, y, z) for z in (0.0, 1.0) for x, y in section])
    faces = [[0, 2, 1], [3, 4, 5]]
    for i in range(3):
        j = (i + 1) % 3
        faces += [[i, j, j + 3], [i, j + 3, i + 3]]
    return mesh_from_arrays(v, np.array(faces))


@dataclass(frozen=True)
class Scene:
    """A synthetic scan of the part and everything known about how it was made."""

    mesh: CadMesh
    labels: npt.NDArray[np.int32]
    clean: F64  # model frame, with defects and noise
    scan: F64  # scan frame (misaligned)
    misalignment: F64  # model -> scan
    dent: npt.NDArray[np.bool_]
    bulge: npt.NDArray[np.bool_]
    dent_region: int
    bulge_region: int


def make_scene(mesh: CadMesh, *, seed: int = 7, n: int = 120_000) -> Scene:
    rng = np.random.default_rng(seed)
    labels = mesh_face_regions(mesh)
    points, normals, tri = mesh_sample_points(mesh, n, seed=rng)
    dent_region = region_at(mesh, labels, DENT_CENTRE)
    bulge_region = region_at(mesh, labels, BULGE_CENTRE)
    dent = (labels[tri] == dent_region) & (np.linalg.norm(points - DENT_CENTRE, axis=1) < RADIUS)
    bulge = (labels[tri] == bulge_region) & (np.linalg.norm(points - BULGE_CENTRE, axis=1) < RADIUS)
    points[dent] -= DENT_DEPTH * normals[dent]
    points[bulge] += BULGE_HEIGHT * normals[bulge]
    points += rng.normal(0.0, NOISE, points.shape)
    misalignment = rigid(rng, MISALIGN_DEG, MISALIGN_SHIFT)
    return Scene(
        mesh=mesh,
        labels=labels,
        clean=points,
        scan=apply(misalignment, points),
        misalignment=misalignment,
        dent=dent,
        bulge=bulge,
        dent_region=dent_region,
        bulge_region=bulge_region,
    )


@pytest.fixture(scope="module")
def part() -> CadMesh:
    return mesh_load(PART)


@pytest.fixture(scope="module")
def scene(part: CadMesh) -> Scene:
    return make_scene(part)


@pytest.fixture(scope="module")
def device_alignment(scene: Scene) -> AlignmentResult:
    """Given an edge-device start that is itself 1 degree / 1 cm off."""
    rng = np.random.default_rng(11)
    device = rigid(rng, 1.0, 0.01) @ np.linalg.inv(scene.misalignment)
    return scan_align(scene.scan, scene.mesh, init=device)


# ----------------------------------------------------------------------------- mesh


def test_part_loads_with_its_real_size_and_topology(part: CadMesh) -> None:
    report = mesh_inspect(part)

    assert report.n_triangles == 3476
    assert report.area == pytest.approx(53.8274, abs=1e-3)
    assert report.bbox_min == pytest.approx((-2.5, -1.25, 0.0), abs=1e-9)
    assert report.bbox_max == pytest.approx((2.5, 1.25, 1.375), abs=1e-9)
    assert report.merged_vertices > 0  # STL stores every corner; they are shared now
    assert report.is_edge_manifold
    assert report.is_consistently_oriented
    assert not report.is_watertight  # T-junctions leave unshared edges
    assert report.n_boundary_edges == 576
    assert report.n_degenerate_faces == 0


def test_closed_mesh_is_reported_watertight() -> None:
    report = mesh_inspect(mesh_load(CLOSED))

    assert report.is_watertight
    assert (report.n_triangles, report.n_vertices) == (3878, 1941)
    assert report.n_boundary_edges == 0


def test_empty_mesh_is_refused() -> None:
    with pytest.raises(MeshError, match="no triangles") as err:
        mesh_load(EMPTY)
    assert err.value.path == str(EMPTY)


@pytest.mark.parametrize("cut", [1, 25, 50, 193_000])
def test_truncated_binary_stl_is_refused(tmp_path: Path, cut: int) -> None:
    broken = tmp_path / "broken.stl"
    broken.write_bytes(CLOSED.read_bytes()[:-cut])

    with pytest.raises(MeshError, match="truncated or corrupt binary STL"):
        mesh_load(broken)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("garbage.stl", b"\x00\x01 not a mesh", "not an STL"),
        ("zero.stl", b"", "file is empty"),
        ("bad.stl", b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\n", "corrupt ASCII"),
        ("nan.stl", b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
         b"vertex nan 1 0\nendloop\nendfacet\nendsolid x\n", "non-finite"),
        ("points.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no triangles"),
        ("broken.ply", b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n", "no tri"),
        ("mesh.step", b"ISO-10303-21;", "unsupported mesh format"),
    ],
)  # fmt: skip
def test_unreadable_meshes_are_refused(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(MeshError, match=reason):
        mesh_load(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MeshError, match="cannot read file"):
        mesh_load(tmp_path / "nope.stl")


@pytest.mark.parametrize(
    ("vertices", "triangles", "reason"),
    [
        ([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 3]], "out of range"),
        ([[0, 0, 0], [1, 0, 0], [np.inf, 1, 0]], [[0, 1, 2]], "non-finite"),
        ([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2]], "degenerate"),
        ([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.empty((0, 3), int), "no triangles"),
        ([[0, 0], [1, 0]], [[0, 1, 1]], "shape"),
    ],
)
def test_unusable_arrays_are_refused(
    vertices: list[list[float]], triangles: list[list[int]], reason: str
) -> None:
    with pytest.raises(MeshError, match=reason):
        mesh_from_arrays(vertices, triangles)


def test_obj_goes_through_the_same_validation(tmp_path: Path) -> None:
    box = box_mesh()
    path = tmp_path / "box.obj"
    lines = [f"v {x} {y} {z}" for x, y, z in box.vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in box.triangles]
    path.write_text("\n".join(lines) + "\n")

    report = mesh_inspect(mesh_load(path))

    assert (report.n_triangles, report.is_watertight, report.area) == (12, True, 6.0)


def test_degenerate_triangles_are_dropped_and_counted() -> None:
    vertices = np.vstack([BOX_VERTICES, [[0.5, 0.0, 0.0]]])  # on the edge 0-1
    repeated_corner, collinear = [0, 0, 1], [0, 1, 8]
    triangles = np.vstack([BOX_FACES, [repeated_corner, collinear]])

    mesh = mesh_from_arrays(vertices, triangles)

    assert mesh.dropped_degenerate == 2
    assert mesh.n_triangles == 12
    assert mesh.vertices.shape[0] == 8  # the collinear vertex is no longer referenced


def test_face_regions_follow_cad_faces() -> None:
    labels = mesh_face_regions(box_mesh())

    assert labels.max() + 1 == 6
    assert all(labels[2 * k] == labels[2 * k + 1] for k in range(6))


# ----------------------------------------------------------------------------- sign


def test_sign_on_an_open_box() -> None:
    box = box_mesh(open_top=True)
    assert not mesh_inspect(box).is_watertight
    points = np.array(
        [
            [1.1, 0.5, 0.5],  # outside each wall and the bottom
            [-0.1, 0.5, 0.5],
            [0.5, 1.1, 0.5],
            [0.5, -0.1, 0.5],
            [0.5, 0.5, -0.1],
            [-0.1, 0.5, 0.95],  # outside, next to the open rim
            [-0.05, 0.5, 1.05],  # outside, above the rim: nearest is the rim edge
            [0.2, 0.5, 0.5],  # inside
            [0.5, 0.7, 0.4],
            [0.1, 0.5, 0.95],  # inside, next to the open rim
        ]
    )
    expected = [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, np.hypot(0.05, 0.05), -0.2, -0.3, -0.1]

    result = deviation_compute(box, points)

    np.testing.assert_allclose(result.distances, expected, atol=1e-6)


def test_sign_at_a_sharp_edge_uses_the_edge_pseudo_normal() -> None:
    wedge = wedge_mesh()
    # Outside the 20-degree apex, below the plane of the upper face: a face-normal sign
    # taken from the upper face would call these points inside.
    outside = np.array([[1.1, -0.05, 0.5], [1.1, 0.05, 0.5], [1.1, -0.05, -0.1], [1.2, 0.0, 1.1]])
    inside = np.array([[0.5, 0.0, 0.5], [0.9, 0.005, 0.9]])

    d = deviation_compute(wedge, np.vstack([outside, inside])).distances

    assert (d[:4] > 0).all()
    assert (d[4:] < 0).all()


def test_sign_matches_winding_number_on_a_closed_curved_mesh() -> None:
    mesh = mesh_load(CLOSED)
    rng = np.random.default_rng(3)
    points, _, _ = mesh_sample_points(mesh, 400, seed=rng)
    points += rng.normal(0.0, 0.02 * mesh.diagonal, points.shape)

    d = deviation_compute(mesh, points).distances
    inside = mesh_winding_number(mesh, points) > 0.5

    clear = np.abs(d) > 1e-6 * mesh.diagonal
    assert clear.sum() > 390
    np.testing.assert_array_equal(d[clear] < 0, inside[clear])


# ----------------------------------------------------------------------------- distance


def test_distances_are_exact_on_a_box() -> None:
    rng = np.random.default_rng(5)
    points = rng.uniform(-1.0, 2.0, size=(5000, 3))
    outside = np.linalg.norm(np.maximum(np.maximum(-points, points - 1.0), 0.0), axis=1)
    inside = np.minimum(points, 1.0 - points).min(axis=1)
    truth = np.where(outside > 0, outside, -inside)

    result = deviation_compute(box_mesh(), points)

    np.testing.assert_allclose(result.distances, truth, atol=1e-6)
    assert result.n_fallback > 0  # far points took the BVH path and agree too


def test_grid_and_bvh_paths_agree(part: CadMesh, scene: Scene) -> None:
    rng = np.random.default_rng(9)
    far = rng.uniform(-6.0, 6.0, size=(2000, 3))
    points = np.vstack([scene.clean[:20_000], far])

    grid = DeviationIndex(part).query(points)
    bvh_only = DeviationIndex(part, band_cells=0.0).query(points)

    assert bvh_only.n_fallback == points.shape[0]
    np.testing.assert_array_equal(grid.distances, bvh_only.distances)


def test_building_in_slabs_gives_the_same_index(
    part: CadMesh, scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inspections.geometry.deviation as deviation

    points = scene.clean[:20_000]
    whole = DeviationIndex(part)
    monkeypatch.setattr(deviation, "_PAIR_BUDGET", 50_000)  # forces ~20 slabs
    slabbed = DeviationIndex(part)

    assert slabbed.n_candidates == whole.n_candidates
    np.testing.assert_array_equal(slabbed.query(points).distances, whole.query(points).distances)


def test_chunking_dtype_and_layout_do_not_change_results(part: CadMesh, scene: Scene) -> None:
    points = scene.clean[:30_000]
    index = DeviationIndex(part)
    reference = index.query(points)

    small_chunks = index.query(points, chunk_size=997)
    fortran = index.query(np.asfortranarray(points))
    single = index.query(points.astype(np.float32))

    np.testing.assert_array_equal(small_chunks.distances, reference.distances)
    np.testing.assert_array_equal(small_chunks.triangle_ids, reference.triangle_ids)
    np.testing.assert_array_equal(fortran.distances, reference.distances)
    np.testing.assert_allclose(single.distances, reference.distances, atol=1e-6)


def test_transform_is_applied_on_the_fly(part: CadMesh, scene: Scene) -> None:
    points = scene.scan[:20_000]
    back = np.linalg.inv(scene.misalignment)

    on_the_fly = deviation_compute(part, points, transform=back)
    moved = deviation_compute(part, apply(back, points))

    np.testing.assert_allclose(on_the_fly.distances, moved.distances, atol=1e-9)


def test_utm_coordinates_give_the_same_distances(part: CadMesh, scene: Scene) -> None:
    utm_part = mesh_from_arrays(part.vertices + UTM, part.triangles)

    near_origin = deviation_compute(part, scene.clean)
    at_utm = deviation_compute(utm_part, scene.clean + UTM)

    np.testing.assert_allclose(at_utm.offset, part.center + UTM)
    diff = np.abs(at_utm.distances.astype(np.float64) - near_origin.distances)
    assert diff.max() <= 1e-6 * part.diagonal  # 1 um per metre of model size
    assert (at_utm.triangle_ids == near_origin.triangle_ids).mean() > 0.999  # ties aside


# ----------------------------------------------------------------------------- align + deviation


def test_device_start_is_refined_to_the_inverse_misalignment(
    scene: Scene, device_alignment: AlignmentResult
) -> None:
    rot_err, shift_err = transform_error(
        device_alignment.transform, np.linalg.inv(scene.misalignment), scene.scan.mean(axis=0)
    )

    assert device_alignment.initial == "given"
    assert rot_err < MAX_ROT_ERR_DEG
    assert shift_err < MAX_SHIFT_ERR
    assert device_alignment.fitness > 0.98
    assert device_alignment.inlier_rmse < 2 * NOISE
    assert device_alignment.iterations >= len(device_alignment.levels)
    assert not device_alignment.transform.flags.writeable


def test_global_registration_when_no_start_is_given(scene: Scene) -> None:
    result = scan_align(scene.scan, scene.mesh)

    rot_err, shift_err = transform_error(
        result.transform, np.linalg.inv(scene.misalignment), scene.scan.mean(axis=0)
    )
    assert result.initial == "global"
    assert rot_err < MAX_ROT_ERR_DEG
    assert shift_err < MAX_SHIFT_ERR


def test_alignment_at_utm_coordinates(part: CadMesh, scene: Scene) -> None:
    shift = np.eye(4)
    shift[:3, 3] = UTM
    utm_part = mesh_from_arrays(part.vertices + UTM, part.triangles)
    utm_scan = apply(shift, scene.scan)  # the scan frame is georeferenced too
    truth = shift @ np.linalg.inv(scene.misalignment) @ np.linalg.inv(shift)
    device = truth @ shift @ rigid(np.random.default_rng(11), 1.0, 0.01) @ np.linalg.inv(shift)

    result = scan_align(utm_scan, utm_part, init=device)

    rot_err, shift_err = transform_error(result.transform, truth, utm_scan.mean(axis=0))
    assert rot_err < MAX_ROT_ERR_DEG
    assert shift_err < MAX_SHIFT_ERR


def test_dent_and_bulge_are_found_where_and_as_deep_as_made(
    scene: Scene, device_alignment: AlignmentResult
) -> None:
    result = deviation_compute(scene.mesh, scene.scan, transform=device_alignment.transform)
    d = result.distances.astype(np.float64)
    region = scene.labels[result.triangle_ids]
    sound = ~(scene.dent | scene.bulge)

    # Depth within noise (the median of ~1,000 points is far tighter than NOISE).
    assert scene.dent.sum() > 500 and scene.bulge.sum() > 500
    assert np.median(d[scene.dent]) == pytest.approx(-DENT_DEPTH, abs=NOISE / 4)
    assert np.median(d[scene.bulge]) == pytest.approx(BULGE_HEIGHT, abs=NOISE / 4)
    assert abs(np.median(d[sound])) < NOISE / 10
    assert np.std(d[sound]) == pytest.approx(NOISE, rel=0.1)

    # Found in the right place: every strongly negative point is a dent point on the
    # dented CAD face, every strongly positive one a bulge point on the bulged face.
    deep = d < -DENT_DEPTH / 2
    high = d > BULGE_HEIGHT / 2
    np.testing.assert_array_equal(deep, scene.dent & deep)
    np.testing.assert_array_equal(high, scene.bulge & high)
    assert (region[deep] == scene.dent_region).all()
    assert (region[high] == scene.bulge_region).all()

    stats = deviation_region_stats(result, regions=scene.labels)
    others = np.ones(stats.n_regions, dtype=bool)
    others[[scene.dent_region, scene.bulge_region]] = False
    assert stats.min[scene.dent_region] < -DENT_DEPTH + 3 * NOISE
    assert stats.max[scene.bulge_region] > BULGE_HEIGHT - 3 * NOISE
    assert np.nanmin(stats.min[others]) > -DENT_DEPTH / 2
    assert np.nanmax(stats.max[others]) < BULGE_HEIGHT / 2
    assert stats.count.sum() == d.shape[0]


def test_region_stats_aggregate_exactly() -> None:
    box = box_mesh()
    points = np.array([[0.5, 0.5, -0.1], [0.4, 0.6, -0.3], [0.5, 0.5, 1.2], [0.5, 0.5, 0.9]])

    result = deviation_compute(box, points)
    stats = deviation_region_stats(result, regions=mesh_face_regions(box))
    bottom = mesh_face_regions(box)[result.triangle_ids[0]]
    top = mesh_face_regions(box)[result.triangle_ids[2]]

    assert stats.count[bottom] == 2
    assert stats.mean[bottom] == pytest.approx(0.2)
    assert stats.rms[bottom] == pytest.approx(np.sqrt((0.01 + 0.09) / 2))
    assert (stats.min[top], stats.max[top]) == pytest.approx((-0.1, 0.2))
    assert stats.count.sum() == 4
    assert np.isnan(stats.mean[stats.count == 0]).all()
