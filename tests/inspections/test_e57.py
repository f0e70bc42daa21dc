"""E57 scans: validated and made canonical like LAS, scans merged with their poses.

The fixtures are generated from simple.las by tests/fixtures/pointclouds/make_e57.py,
so every E57 point is known: it must come back where the LAS file has it.
"""

from __future__ import annotations

import io
import tempfile
import uuid
from pathlib import Path
from typing import Any

import laspy
import numpy as np
import pyarrow.parquet as pq
import pytest
from django_tenants.utils import schema_context

from inspections import objectstore, services
from inspections.models import Scan
from inspections.pointcloud import e57
from inspections.pointcloud.canonical import CanonicalWriter, read_xyz
from inspections.pointcloud.validate import Limits, Rejected, Report, validate
from tests.conftest import TenantUser, make_user
from tests.fixtures.pointclouds.make_e57 import (
    INVALID_RECORDS,
    QUARTER_TURN_Z,
    SPLIT,
    write_raw_scan,
)
from tests.inspections.ingest_helpers import (
    FIXTURES,
    fixture_bytes,
    make_asset,
    scan_metadata,
    upload_whole,
)

LAS = laspy.read(FIXTURES / "simple.las")
LAS_XYZ = np.stack([np.asarray(LAS.x), np.asarray(LAS.y), np.asarray(LAS.z)], axis=1)
MM = 1e-3  # float32 local coordinates of a few km, then 0.1 mm quantization


def canonical(data: bytes, limits: Limits = Limits()) -> tuple[Report, bytes]:  # noqa: B008
    out = io.BytesIO()
    writer = CanonicalWriter(out)
    report = validate(lambda: io.BytesIO(data), size=len(data), encoding="e57", limits=limits,
                      on_points=writer.on_points, on_xyz=writer.on_xyz)
    writer.close()
    return report, out.getvalue()


def raw_scan(tmp_path: Path, **columns: np.ndarray) -> bytes:
    path = tmp_path / "raw.e57"
    write_raw_scan(path, columns)
    return path.read_bytes()


def test_fixtures_are_small() -> None:
    for name in ("simple.e57", "simple-two-scans.e57", "spherical.e57"):
        assert (FIXTURES / name).stat().st_size < 200_000


def test_one_scan_becomes_the_same_canonical_cloud_as_its_las_source() -> None:
    report, parquet = canonical(fixture_bytes("simple.e57"))

    assert (report.format, report.version, report.point_count) == ("e57", "1.0", 1065)
    assert report.extra == {"scans": 1, "records": 1065, "invalid_records": 0,
                            "intensity": True, "colour": True, "spherical_scans": 0}
    assert np.allclose(report.mins, LAS.header.mins, atol=MM)
    assert np.allclose(report.maxs, LAS.header.maxs, atol=MM)
    assert np.allclose(read_xyz(io.BytesIO(parquet)), LAS_XYZ, atol=MM)
    table = pq.read_table(io.BytesIO(parquet))
    assert table.schema.names == ["x", "y", "z", "intensity", "red", "green", "blue"]
    assert b'"source": "e57"' in table.schema.metadata[b"d2r.canonical"]
    # Intensity and colour are rescaled to 16 bits from the scan's limits (0-254, 0-255).
    intensity = table.column("intensity").to_numpy()
    expected = np.rint(np.asarray(LAS.intensity) * (65535 / 254))
    assert np.array_equal(intensity, expected.astype(np.uint16))
    assert np.array_equal(table.column("red").to_numpy(), np.asarray(LAS.red) * 257)


def test_two_scans_are_merged_with_their_poses_and_invalid_records_dropped() -> None:
    import pye57

    report, parquet = canonical(fixture_bytes("simple-two-scans.e57"))

    assert report.point_count == 1065
    assert report.extra["scans"] == 2
    assert report.extra["records"] == 1065 + INVALID_RECORDS
    assert report.extra["invalid_records"] == INVALID_RECORDS
    assert np.allclose(report.mins, LAS.header.mins, atol=MM)
    assert np.allclose(report.maxs, LAS.header.maxs, atol=MM)
    xyz = read_xyz(io.BytesIO(parquet))
    assert np.allclose(xyz, LAS_XYZ, atol=MM)
    # The second station's first point, as stored, is in the station's rotated frame;
    # its pose (a quarter turn about z, then a shift) puts it back on LAS point 500.
    with pye57.E57(str(FIXTURES / "simple-two-scans.e57")) as source:
        stored = source.read_scan(1, transform=False, ignore_missing_fields=True)
        header = source.get_header(1)
        rotation, matrix, translation = (header.rotation, header.rotation_matrix,
                                         header.translation)  # read while the file is open
    local = np.array([stored["cartesianX"][0], stored["cartesianY"][0],
                      stored["cartesianZ"][0]])
    assert np.allclose(rotation, QUARTER_TURN_Z)
    assert np.linalg.norm(local - LAS_XYZ[SPLIT]) > 1000
    assert np.allclose(matrix @ local + translation, xyz[SPLIT], atol=MM)
    assert np.allclose(xyz[SPLIT], LAS_XYZ[SPLIT], atol=MM)


def test_spherical_coordinates_are_converted_and_posed() -> None:
    report, parquet = canonical(fixture_bytes("spherical.e57"))

    assert (report.point_count, report.extra["spherical_scans"]) == (200, 1)
    assert np.allclose(read_xyz(io.BytesIO(parquet)), LAS_XYZ[:200], atol=MM)
    assert pq.read_schema(io.BytesIO(parquet)).names == ["x", "y", "z"]


def test_scans_are_read_in_bounded_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e57, "CHUNK_POINTS", 100)

    report, parquet = canonical(fixture_bytes("simple-two-scans.e57"))

    assert report.point_count == 1065
    # 500 points in 5 chunks, then 572 records in 6 chunks (7 of them invalid)
    assert pq.ParquetFile(io.BytesIO(parquet)).num_row_groups == 11
    assert np.allclose(read_xyz(io.BytesIO(parquet)), LAS_XYZ, atol=MM)


def _flipped(data: bytes, at: int) -> bytes:
    corrupt = bytearray(data)
    corrupt[at] ^= 0xFF
    return bytes(corrupt)


SIMPLE = fixture_bytes("simple.e57")
X = np.array([0.0, 1.0, 2.0])


@pytest.mark.parametrize(("case", "data", "encoding", "reason"), [
    ("truncated", SIMPLE[:12_000], "e57", "truncated"),
    ("cut inside the file header", SIMPLE[:30], "e57", "truncated"),
    ("bytes after the declared end", SIMPLE + bytes(1024), "e57", "invalid-header"),
    ("a flipped bit in the points (page CRC)", _flipped(SIMPLE, 5000), "e57", "corrupt"),
    ("a flipped bit in the XML (page CRC)", _flipped(SIMPLE, len(SIMPLE) - 2000), "e57",
     "corrupt"),
    ("E57 declared as LAS", SIMPLE, "las", "encoding-mismatch"),
    ("E57 declared as PLY", SIMPLE, "ply", "encoding-mismatch"),
    ("LAS declared as E57", fixture_bytes("simple.las"), "e57", "encoding-mismatch"),
    ("LAZ declared as E57", fixture_bytes("simple.laz"), "e57", "encoding-mismatch"),
])
def test_bad_e57_files_are_rejected_with_their_reason(case: str, data: bytes, encoding: str,
                                                      reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        validate(lambda: io.BytesIO(data), size=len(data), encoding=encoding)
    assert caught.value.reason == reason, caught.value.detail
    assert caught.value.detail
    assert tempfile.gettempdir() not in caught.value.detail  # no scratch path leaks


def test_an_e57_without_scans_is_an_empty_cloud(tmp_path: Path) -> None:
    import pye57

    path = tmp_path / "empty.e57"
    with pye57.E57(str(path), mode="w"):
        pass
    with pytest.raises(Rejected) as caught:
        canonical(path.read_bytes())
    assert (caught.value.reason, caught.value.detail) == (
        "empty-cloud", "The E57 file's 0 scans hold no points.")


@pytest.mark.parametrize(("case", "columns", "reason"), [
    ("every record flagged invalid",
     {"cartesianX": X, "cartesianY": X, "cartesianZ": X,
      "cartesianInvalidState": np.full(3, 2, np.int8)}, "empty-cloud"),
    ("NaN coordinate", {"cartesianX": np.array([0.0, np.nan, 2.0]), "cartesianY": X,
                        "cartesianZ": X}, "non-finite-values"),
    ("infinite coordinate", {"cartesianX": np.array([0.0, np.inf, 2.0]), "cartesianY": X,
                             "cartesianZ": X}, "non-finite-values"),
    ("beyond 1e9 m", {"cartesianX": X * 1e10, "cartesianY": X, "cartesianZ": X},
     "out-of-range"),
    ("no coordinates", {"intensity": X}, "unsupported-coordinates"),
])
def test_bad_points_are_rejected_with_their_reason(tmp_path: Path, case: str,
                                                   columns: dict[str, np.ndarray],
                                                   reason: str) -> None:
    data = raw_scan(tmp_path, **columns)
    with pytest.raises(Rejected) as caught:
        canonical(data)
    assert caught.value.reason == reason, caught.value.detail


def test_a_zero_rotation_quaternion_is_an_invalid_pose(tmp_path: Path) -> None:
    import pye57

    path = tmp_path / "pose.e57"
    with pye57.E57(str(path), mode="w") as out:
        out.write_scan_raw({"cartesianX": X, "cartesianY": X, "cartesianZ": X},
                           rotation=np.zeros(4), translation=np.zeros(3))
    with pytest.raises(Rejected) as caught:
        canonical(path.read_bytes())
    assert caught.value.reason == "invalid-pose"


@pytest.mark.parametrize(("limits", "reason"), [
    (Limits(max_points=1000), "too-many-points"),
    (Limits(max_ratio=1), "decompression-bomb"),
    (Limits(max_decompressed_bytes=10_000), "decompression-bomb"),
])
def test_limits_are_checked_from_the_declared_records_before_decoding(
    limits: Limits, reason: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def must_not_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("points were decoded")

    monkeypatch.setattr(e57, "_read_scan", must_not_read)
    with pytest.raises(Rejected) as caught:
        canonical(SIMPLE, limits)
    assert caught.value.reason == reason, caught.value.detail


def test_the_scratch_copy_is_deleted_whatever_happens(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    canonical(SIMPLE)
    with pytest.raises(Rejected):
        canonical(_flipped(SIMPLE, 5000))

    def breaks(*args: Any, **kwargs: Any) -> Any:
        assert len(list(tmp_path.glob("d2r-e57-*.e57"))) == 1  # the copy exists meanwhile
        raise RuntimeError("disk gone")

    monkeypatch.setattr(e57, "_validate_path", breaks)
    with pytest.raises(RuntimeError):
        canonical(SIMPLE)
    assert list(tmp_path.iterdir()) == []


# The worker, end to end: tus upload → outbox → scan_process → API.


@pytest.fixture
def operator(db: None) -> TenantUser:
    return make_user("alpha", role="operator", name="op")


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    from inspections.tasks import scan_process_task

    monkeypatch.setattr(services, "publish", lambda schema, topic, event: None)
    monkeypatch.setattr(scan_process_task, "delay", lambda scan_id: None)


def processed(operator: TenantUser, data: bytes, capture: Any, encoding: str = "e57"
              ) -> tuple[str, Scan]:
    asset = make_asset("alpha")
    with capture(execute=True):
        _, last = upload_whole(operator.client, data, scan_metadata(data, asset.pk, encoding),
                               chunk=10_000)
    with schema_context("alpha"), capture(execute=True):
        status = services.scan_process(scan_id=uuid.UUID(last["D2R-Scan-Id"]))
        return status, Scan.objects.get(pk=last["D2R-Scan-Id"])


@pytest.mark.django_db
def test_an_e57_upload_is_processed_with_its_poses_applied(
    operator: TenantUser, quiet: None, django_capture_on_commit_callbacks: Any,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    status, scan = processed(operator, fixture_bytes("simple-two-scans.e57"),
                             django_capture_on_commit_callbacks)

    assert (status, scan.status, scan.encoding, scan.point_count) == (
        "processed", "processed", "e57", 1065)
    assert np.allclose(scan.bounds["min"], LAS.header.mins, atol=MM)
    assert np.allclose(scan.bounds["max"], LAS.header.maxs, atol=MM)
    with schema_context("alpha"):
        stored = b"".join(objectstore.iter_chunks(scan.canonical_key))
    xyz = read_xyz(io.BytesIO(stored))
    assert np.allclose(xyz[SPLIT], LAS_XYZ[SPLIT], atol=MM)  # moved by the second pose
    api = operator.client.get(f"/api/v1/scans/{scan.pk}").json()
    assert (api["status"], api["encoding"], api["point_count"]) == ("processed", "e57", 1065)
    assert list(tmp_path.iterdir()) == []  # the E57 copy and the Parquet scratch are gone


@pytest.mark.django_db
@pytest.mark.parametrize(("case", "data", "encoding", "reason", "detail"), [
    ("truncated", SIMPLE[:12_000], "e57", "truncated", "only 12000 are present"),
    ("LAS declared as E57", fixture_bytes("simple.las"), "e57", "encoding-mismatch",
     "Declared 'e57'"),
    ("E57 declared as LAZ", SIMPLE, "laz", "encoding-mismatch", "starts like e57"),
    ("empty", "empty", "e57", "empty-cloud", "0 scans"),
])
def test_a_bad_e57_upload_ends_rejected_with_its_reason(
    operator: TenantUser, quiet: None, django_capture_on_commit_callbacks: Any,
    tmp_path: Path, case: str, data: Any, encoding: str, reason: str, detail: str,
) -> None:
    if data == "empty":
        import pye57

        with pye57.E57(str(tmp_path / "empty.e57"), mode="w"):
            pass
        data = (tmp_path / "empty.e57").read_bytes()

    status, scan = processed(operator, data, django_capture_on_commit_callbacks, encoding)

    assert (status, scan.status, scan.rejection_reason) == ("rejected", "rejected", reason)
    assert detail in scan.rejection_detail
    assert scan.canonical_key == ""
    api = operator.client.get(f"/api/v1/scans/{scan.pk}").json()
    assert (api["status"], api["rejection_reason"]) == ("rejected", reason)
