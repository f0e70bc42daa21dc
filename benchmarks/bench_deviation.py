"""Benchmark of scan-vs-CAD deviation (``inspections.geometry``) against CloudCompare.

Run: ``.venv/bin/python benchmarks/bench_deviation.py [--points N] [--repeat R]``
(needs the Debian package ``cloudcompare``; ``--skip-cloudcompare`` runs without it).

The scan: ``--points`` (10 M) points sampled uniformly on a real fixture part
(tests/fixtures/cad/featuretype.STL, 3,476 triangles, 5 x 2.5 x 1.375 units), Gaussian
noise of 0.002 and 0.1 % of clutter uniform in a box twice the part's size. Coordinates
are rounded to float32 once so that both programs read exactly the same points.

Prints ``BENCH <name> <value>`` lines (medians of ``--repeat`` runs):

* ``deviation_mpts_per_s``: our signed distance of every point, *including* building
  the index for the mesh (grid, candidate lists, BVH, pseudo-normals) each time;
* ``deviation_cloudcompare_seconds``: CloudCompare 2.11 ``-C2M_DIST`` (signed), the
  time it logs as ``[ComputeDistances]``. That covers intersecting the mesh with the
  cloud's octree and the distances, but NOT building the cloud's octree, which its
  command line does beforehand inside ``[computeApproxDistances]`` (logged separately
  as ``deviation_cloudcompare_approx_seconds``), nor file I/O;
* ``deviation_vs_cloudcompare_speed_ratio``: ours / theirs in points per second on the
  same points (their ``[ComputeDistances]`` only: the strictest reading for us);
  ``..._speed_ratio_incl_octree`` adds their octree step;
* ``deviation_vs_cloudcompare_max_abs_diff`` and ``..._median_abs_diff``: on the
  distance magnitudes; the sign is compared separately because CloudCompare 2.11 takes
  it from the face normal of whichever triangle it found nearest, so at edges and
  T-junctions it flips on near-ties. ``..._sign_disagreements`` counts points whose
  signs differ (ignoring |d| below 1e-6 of the model size, where the sign is rounding),
  and ``..._sign_disagreements_ours_right`` how many of those (up to 200 checked) the
  generalised winding number of the closed part says we got right;
* ``process_10m_seconds``: in a fresh child process, alignment (coarse-to-fine ICP from
  a device start 1 degree / 1 cm off a 3 degree / 4 cm misalignment) + deviation of all
  points through the found transform + per-CAD-face statistics; ``process_10m_peak_rss_mib``
  that child's peak RSS (VmHWM), scan generation included: of it ~360 MiB is Python with
  numpy, Open3D and the compiled kernels loaded, 229 MiB the scan, 76 MiB the outputs.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inspections.geometry.align import scan_align  # noqa: E402  (after sys.path set-up)
from inspections.geometry.deviation import (  # noqa: E402
    DeviationIndex,
    deviation_compute,
    deviation_region_stats,
)
from inspections.geometry.mesh import (  # noqa: E402
    CadMesh,
    mesh_face_regions,
    mesh_load,
    mesh_sample_points,
    mesh_winding_number,
)

F64 = npt.NDArray[np.float64]
PART = ROOT / "tests" / "fixtures" / "cad" / "featuretype.STL"
NOISE = 0.002
CLUTTER = 0.001
CHUNK = 1 << 20


def make_scan(mesh: CadMesh, n: int, seed: int = 0) -> F64:
    """float32-rounded noisy surface samples plus clutter, generated chunk by chunk."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3), dtype=np.float64)
    for s in range(0, n, CHUNK):
        e = min(s + CHUNK, n)
        pts, _, _ = mesh_sample_points(mesh, e - s, seed=rng)
        pts += rng.normal(0.0, NOISE, pts.shape)
        out[s:e] = pts
    n_clutter = int(n * CLUTTER)
    idx = rng.choice(n, n_clutter, replace=False)
    extent = mesh.bbox_max - mesh.bbox_min
    out[idx] = mesh.center + rng.uniform(-1.0, 1.0, (n_clutter, 3)) * extent
    for s in range(0, n, CHUNK):  # both programs must read the very same coordinates
        out[s : s + CHUNK] = out[s : s + CHUNK].astype(np.float32)
    return out


def rigid(rng: np.random.Generator, degrees: float, shift: float) -> F64:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    skew = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    a = np.deg2rad(degrees)
    m = np.eye(4)
    m[:3, :3] = np.eye(3) + np.sin(a) * skew + (1.0 - np.cos(a)) * skew @ skew
    direction = rng.normal(size=3)
    m[:3, 3] = shift * direction / np.linalg.norm(direction)
    return m


def write_cloud_ply(path: Path, points: F64) -> None:
    header = (
        f"ply\nformat binary_little_endian 1.0\nelement vertex {points.shape[0]}\n"
        "property float x\nproperty float y\nproperty float z\nend_header\n"
    )
    with path.open("wb") as f:
        f.write(header.encode("ascii"))
        for s in range(0, points.shape[0], CHUNK):
            f.write(points[s : s + CHUNK].astype("<f4").tobytes())


def write_mesh_ply(path: Path, mesh: CadMesh) -> None:
    n_v, n_f = mesh.vertices.shape[0], mesh.n_triangles
    header = (
        f"ply\nformat binary_little_endian 1.0\nelement vertex {n_v}\n"
        "property float x\nproperty float y\nproperty float z\n"
        f"element face {n_f}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    faces = np.zeros(n_f, dtype=[("n", "u1"), ("v", "<i4", (3,))])
    faces["n"] = 3
    faces["v"] = mesh.triangles
    with path.open("wb") as f:
        f.write(header.encode("ascii"))
        f.write(mesh.vertices.astype("<f4").tobytes())
        f.write(faces.tobytes())


def read_ply_scalar(path: Path, name_part: str) -> npt.NDArray[np.float32]:
    """The float property whose name contains ``name_part`` from a binary PLY cloud."""
    with path.open("rb") as f:
        header = b""
        while not header.endswith(b"end_header\n"):
            line = f.readline()
            if not line:
                raise RuntimeError(f"{path}: no PLY header")
            header += line
        props = re.findall(rb"property (\w+) (\S+)", header)
        count = int(re.search(rb"element vertex (\d+)", header).group(1))  # type: ignore[union-attr]
        kinds = {b"float": "<f4", b"double": "<f8", b"float32": "<f4", b"float64": "<f8"}
        dtype = np.dtype([(n.decode(), kinds[t]) for t, n in props])
        data = np.fromfile(f, dtype=dtype, count=count)
    names = [n for n in dtype.names or () if name_part in n]
    if not names:
        raise RuntimeError(f"{path}: no property containing {name_part!r} in {dtype.names}")
    return np.asarray(data[names[0]], dtype=np.float32)


def run_cloudcompare(scan_ply: Path, mesh_ply: Path, out_ply: Path) -> tuple[float, float]:
    """Run C2M_DIST once; return its logged (ComputeDistances, computeApproxDistances) s."""
    cmd = [
        "CloudCompare", "-SILENT", "-AUTO_SAVE", "OFF", "-O", str(scan_ply), "-O", str(mesh_ply),
        "-C2M_DIST", "-C_EXPORT_FMT", "PLY", "-PLY_EXPORT_FMT", "BINARY_LE",
        "-SAVE_CLOUDS", "FILE", str(out_ply),
    ]  # fmt: skip
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    log = proc.stdout + proc.stderr
    compute = re.search(r"\[ComputeDistances\] Time: ([\d.]+) s", log)
    approx = re.search(r"\[computeApproxDistances\] Time: ([\d.]+) s", log)
    if proc.returncode != 0 or compute is None or approx is None or not out_ply.exists():
        raise RuntimeError(f"CloudCompare failed (exit {proc.returncode}):\n{log[-3000:]}")
    return float(compute.group(1)), float(approx.group(1))


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM). ``ru_maxrss`` is not used: Linux carries
    the parent's peak over fork + exec, which would charge the child with it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_once(n: int, seed: int) -> None:
    """Child process: align + deviation + region statistics on a fresh misaligned scan."""
    mesh = mesh_load(PART)
    scan = make_scan(mesh, n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    misalignment = rigid(rng, 3.0, 0.04)
    rot, trans = misalignment[:3, :3], misalignment[:3, 3]
    for s in range(0, n, CHUNK):  # in place: no second copy of the scan
        scan[s : s + CHUNK] = scan[s : s + CHUNK] @ rot.T + trans
    device = rigid(rng, 1.0, 0.01) @ np.linalg.inv(misalignment)
    DeviationIndex(mesh).query(scan[:1000])  # load the compiled kernels outside the clock

    start = time.perf_counter()
    mesh = mesh_load(PART)
    labels = mesh_face_regions(mesh)
    alignment = scan_align(scan, mesh, init=device)
    t_align = time.perf_counter() - start
    result = deviation_compute(mesh, scan, transform=alignment.transform)
    stats = deviation_region_stats(result, regions=labels)
    elapsed = time.perf_counter() - start
    peak_mib = peak_rss_mib()

    residual = alignment.transform @ misalignment
    rot_err = np.degrees(np.arccos(np.clip((np.trace(residual[:3, :3]) - 1) / 2, -1, 1)))
    centre = scan[:: max(n // 100_000, 1)].mean(axis=0)  # a full mean would copy the scan
    shift_err = np.linalg.norm(
        (alignment.transform[:3, :3] @ centre + alignment.transform[:3, 3])
        - np.linalg.solve(misalignment[:3, :3], centre - misalignment[:3, 3])
    )
    print(
        f"CHILD {elapsed:.4f} {t_align:.4f} {peak_mib:.1f} {rot_err:.6f} {shift_err:.3e} "
        f"{alignment.iterations} {int((stats.count > 0).sum())}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs of our deviation")
    parser.add_argument("--cc-repeat", type=int, default=3, help="runs of CloudCompare")
    parser.add_argument("--process-repeat", type=int, default=3)
    parser.add_argument("--skip-cloudcompare", action="store_true")
    parser.add_argument("--process-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.process_only:
        process_once(args.points, args.seed)
        return 0
    if not args.skip_cloudcompare and shutil.which("CloudCompare") is None:
        print(
            "bench_deviation: CloudCompare is not installed; it is the reference this "
            "benchmark compares against. Install the Debian package "
            "(apt-get update && apt-get install -y cloudcompare) or pass --skip-cloudcompare.",
            file=sys.stderr,
        )
        return 2

    mesh = mesh_load(PART)
    scan = make_scan(mesh, args.points, seed=args.seed)
    n = scan.shape[0]
    DeviationIndex(mesh).query(scan[:1000])  # compile / load the kernels outside the clock

    use_cc = not args.skip_cloudcompare
    with tempfile.TemporaryDirectory(prefix="bench_deviation_") as tmp:
        scan_ply, mesh_ply, out_ply = (Path(tmp, f) for f in ("scan.ply", "mesh.ply", "out.ply"))
        if use_cc:
            write_cloud_ply(scan_ply, scan)
            write_mesh_ply(mesh_ply, mesh)
        # Interleaved, so that both programs see the same background load on a shared box.
        times: list[float] = []
        runs: list[tuple[float, float]] = []
        result = None
        for k in range(max(args.repeat, args.cc_repeat if use_cc else 0)):
            if k < args.repeat:
                start = time.perf_counter()
                result = DeviationIndex(mesh).query(scan)
                times.append(time.perf_counter() - start)
            if use_cc and k < args.cc_repeat:
                runs.append(run_cloudcompare(scan_ply, mesh_ply, out_ply))
        theirs = read_ply_scalar(out_ply, "C2M") if use_cc else None
    assert result is not None
    ours_s = statistics.median(times)
    print(f"# ours: {n:,} points, runs {', '.join(f'{t:.3f}' for t in times)} s; "
          f"{result.n_fallback:,} points took the BVH path")  # fmt: skip
    print(f"BENCH deviation_seconds {ours_s:.4f}")
    print(f"BENCH deviation_mpts_per_s {n / ours_s / 1e6:.2f}")

    if theirs is not None:
        cc_s = statistics.median(r[0] for r in runs)
        cc_approx_s = statistics.median(r[1] for r in runs)
        print(f"# CloudCompare runs (ComputeDistances, computeApproxDistances): {runs}")
        print(f"BENCH deviation_cloudcompare_seconds {cc_s:.3f}")
        print(f"BENCH deviation_cloudcompare_approx_seconds {cc_approx_s:.3f}")
        print(f"BENCH deviation_vs_cloudcompare_speed_ratio {cc_s / ours_s:.2f}")
        print(f"BENCH deviation_vs_cloudcompare_speed_ratio_incl_octree "
              f"{(cc_s + cc_approx_s) / ours_s:.2f}")  # fmt: skip

        ours = result.distances
        magnitude_diff = np.abs(np.abs(ours) - np.abs(theirs))
        signed_diff = np.abs(ours - theirs)
        size = float(np.max(mesh.bbox_max - mesh.bbox_min))
        floor = 1e-6 * mesh.diagonal
        flips = np.flatnonzero(
            (np.sign(ours) != np.sign(theirs)) & (np.abs(ours) > floor) & (np.abs(theirs) > floor)
        )
        checked = flips[:200]
        inside = mesh_winding_number(mesh, scan[checked]) > 0.5
        ours_right = int(((ours[checked] < 0) == inside).sum())
        print(f"BENCH deviation_vs_cloudcompare_max_abs_diff {magnitude_diff.max():.3e}")
        print(f"BENCH deviation_vs_cloudcompare_median_abs_diff {np.median(signed_diff):.3e}")
        print(f"BENCH deviation_vs_cloudcompare_max_abs_diff_per_model_size "
              f"{magnitude_diff.max() / size:.3e}")  # fmt: skip
        print(f"BENCH deviation_vs_cloudcompare_sign_disagreements {flips.size}")
        print(f"BENCH deviation_vs_cloudcompare_sign_disagreements_ours_right "
              f"{ours_right}/{checked.size}")  # fmt: skip
        print(f"BENCH deviation_vs_cloudcompare_max_abs_diff_signed {signed_diff.max():.3e}")
    del scan, result

    children = []
    for k in range(args.process_repeat):
        proc = subprocess.run(
            [sys.executable, __file__, "--process-only", "--points", str(args.points),
             "--seed", str(args.seed + 100 + k)],
            capture_output=True, text=True, check=True, timeout=1800,
        )  # fmt: skip
        line = next(x for x in proc.stdout.splitlines() if x.startswith("CHILD "))
        children.append([float(v) for v in line.split()[1:]])
    for c in children:
        print(f"# process run: total {c[0]:.2f} s (align {c[1]:.2f} s), peak RSS {c[2]:.0f} MiB, "
              f"rotation error {c[3]:.5f} deg, shift error {c[4]:.2e}, {int(c[5])} ICP "
              f"iterations, {int(c[6])} regions with points")  # fmt: skip
    print(f"BENCH process_10m_seconds {statistics.median(c[0] for c in children):.3f}")
    print(f"BENCH process_10m_align_seconds {statistics.median(c[1] for c in children):.3f}")
    print(f"BENCH process_10m_peak_rss_mib {max(c[2] for c in children):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
