"""E57 (ASTM E2807) scans, validated and read in chunks through pye57's libE57 binding.

libE57 opens only a path, so the upload is first copied to a scratch file in 8 MiB
pieces; the file is deleted however validation ends. Then every scan of the file
(`data3D`) is read through libE57's compressed-vector reader into fixed buffers of
`CHUNK_POINTS` records. pye57's `read_scan` would allocate the whole scan at once (about
40 bytes a point); reading by chunks keeps memory at ~20 MB a chunk whatever the
size of the scan. Each chunk gets the scan's pose (rotation quaternion and translation,
as `pye57.E57.read_scan(transform=True)` applies it), so scans of one file are merged
into one cloud in the file's coordinate system.

Coordinates: cartesian x/y/z, or spherical range/azimuth/elevation converted with
pye57's `convert_spherical_to_cartesian`. Points flagged by `cartesianInvalidState` /
`sphericalInvalidState` are dropped, as pye57 does. Intensity and colour are kept when
every scan has them, rescaled to 16 bits from the scan's limits (LAS' convention).

The checks mirror LAS: the 48-byte file header (length, page size, version), libE57's
CRC of every 1 KiB page, the declared record count against the point and decoded-size
limits before anything is decoded, NaN/Inf, coordinates within ±1e9 m, the declared
bounds (of scans without a pose: writers disagree on what the bounds of a posed scan
are), records present against records declared, and an empty cloud.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from inspections.pointcloud.validate import (
    CHUNK_POINTS,
    MAX_ABS_COORDINATE,
    Limits,
    Rejected,
    Report,
)

MAGIC = b"ASTM-E57"
HEADER = struct.Struct("<8sIIQQQQ")  # signature, major, minor, length, xml offset, xml length, page
PAGE_SIZE = 1024
MAX_XML_BYTES = 64 * 1024**2  # real files hold KBs of XML; the XML is parsed whole into memory
COPY_BYTES = 8 * 1024**2
UINT16_MAX = 65535
CARTESIAN = ("cartesianX", "cartesianY", "cartesianZ")
SPHERICAL = ("sphericalRange", "sphericalAzimuth", "sphericalElevation")
COLOURS = {"red": "colorRed", "green": "colorGreen", "blue": "colorBlue"}

# libE57 error codes (the `(ErrorXxx)` in its messages) and the reason each one means.
_REASONS = {
    "ErrorBadFileLength": "truncated",
    "ErrorBadChecksum": "corrupt",
    "ErrorBadCVHeader": "corrupt",
    "ErrorBadCVPacket": "corrupt",
    "ErrorBadCodecs": "corrupt",
    "ErrorReadFailed": "corrupt",
    "ErrorSeekFailed": "corrupt",
    "ErrorBadFileSignature": "invalid-header",
    "ErrorUnknownFileVersion": "invalid-header",
    "ErrorBadXMLFormat": "invalid-header",
    "ErrorXMLParser": "invalid-header",
    "ErrorBadPrototype": "invalid-header",
    "ErrorPathUndefined": "invalid-header",
    "ErrorBadNodeDowncast": "invalid-header",
    "ErrorValueNotRepresentable": "invalid-data",
    "ErrorScaledValueNotRepresentable": "invalid-data",
    "ErrorReal64TooLarge": "invalid-data",
    "ErrorValueOutOfBounds": "invalid-data",
}


def _rejected(exc: Exception, where: str) -> Rejected:
    """A libE57 exception as a rejection; the detail drops libE57's debug lines (they
    name the scratch path)."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    code = re.search(r"\((Error\w+)\)", message)
    reason = _REASONS.get(code.group(1), "corrupt") if code else "corrupt"
    return Rejected(reason, f"{where}: {message}")


@dataclass
class _Scan:
    index: int
    points: Any  # libe57.CompressedVectorNode
    records: int
    fields: list[str]  # what the reader fills: coordinates, then state, intensity, colours
    spherical: bool
    state: str | None
    rotation: np.ndarray | None  # 3x3, None for the identity
    translation: np.ndarray
    bounds: tuple[np.ndarray, np.ndarray] | None  # declared; only for scans without a pose
    intensity: tuple[float, float] | None  # limits to rescale from, when the scan has it
    colour: tuple[float, float] | None

    @property
    def decoded_bytes(self) -> int:
        return self.records * (8 * len(self.fields))


def _check_file_header(head: bytes, size: int) -> tuple[int, int]:
    if len(head) < HEADER.size:
        raise Rejected("truncated", f"The E57 file header is {HEADER.size} bytes; the file "
                                    f"has {len(head)}.")
    _, major, minor, length, xml_offset, xml_length, page = HEADER.unpack(head)
    if major != 1:
        raise Rejected("invalid-header", f"E57 version {major}.{minor} is not supported (1.x).")
    if page != PAGE_SIZE or length % PAGE_SIZE:
        raise Rejected("invalid-header", f"E57 page size {page} / file length {length} are not "
                                         f"whole {PAGE_SIZE}-byte pages.")
    if length > size:
        raise Rejected("truncated", f"The E57 header declares {length} bytes; only {size} "
                                    "are present.")
    if length < size:
        raise Rejected("invalid-header", f"The file has {size - length} bytes after the "
                                         f"{length} its E57 header declares.")
    if xml_offset >= length or xml_length == 0:
        raise Rejected("invalid-header", f"The E57 XML section ({xml_offset}, {xml_length} "
                                         "bytes) is not inside the file.")
    if xml_length > MAX_XML_BYTES:
        raise Rejected("invalid-header", f"The E57 XML section is {xml_length} bytes; the "
                                         f"limit is {MAX_XML_BYTES}.")
    return major, minor


def _copy_to(raw: BinaryIO, head: bytes, path: str, size: int) -> None:
    """The upload, `head` first, into `path` in COPY_BYTES pieces (never more than `size`)."""
    buffer = bytearray(COPY_BYTES)
    view = memoryview(buffer)
    copied = len(head)
    with open(path, "wb") as out:
        out.write(head)
        while copied < size:
            got = raw.readinto(view[: min(COPY_BYTES, size - copied)])  # type: ignore[attr-defined]
            if not got:
                break
            out.write(view[:got])
            copied += got
    if copied < size:
        raise Rejected("truncated", f"Only {copied} of the {size} bytes could be read.")


def _number(node: Any, *path: str) -> float | None:
    from pye57 import libe57

    try:
        for name in path:
            node = node[name]
        value = float(node.value())
    except (libe57.E57Exception, AttributeError, TypeError, ValueError):
        return None
    return value


def _limits(scan: Any, prototype: Any, group: str, low: str, high: str, field: str
            ) -> tuple[float, float]:
    """The scan's declared `group` limits, else the prototype field's own range."""
    lo, hi = _number(scan, group, low), _number(scan, group, high)
    if lo is None or hi is None or not np.isfinite([lo, hi]).all() or hi <= lo:
        node = prototype[field]
        try:
            lo, hi = float(node.minimum()), float(node.maximum())
        except (AttributeError, TypeError, ValueError):
            lo = hi = None
    if lo is None or hi is None or not np.isfinite([lo, hi]).all() or not 0 < hi - lo < 1e12:
        return (0.0, float(UINT16_MAX))  # no usable limits: values are taken as they are
    return (lo, hi)


def _pose(scan: Any, index: int) -> tuple[np.ndarray | None, np.ndarray]:
    if not scan.isDefined("pose"):
        return None, np.zeros(3)
    rotation = [_number(scan, "pose", "rotation", axis) for axis in "wxyz"]
    translation = [_number(scan, "pose", "translation", axis) for axis in "xyz"]
    q = np.array([1.0, 0, 0, 0] if all(v is None for v in rotation)
                 else [np.nan if v is None else v for v in rotation])
    t = np.array([0.0 if v is None else v for v in translation])
    if not np.all(np.isfinite(q)) or not np.all(np.isfinite(t)):
        raise Rejected("non-finite-values", f"Scan {index}'s pose is not finite: rotation "
                                            f"{q.tolist()}, translation {t.tolist()}.")
    if np.linalg.norm(q) < 1e-9:
        raise Rejected("invalid-pose", f"Scan {index}'s rotation quaternion is zero.")
    if np.any(np.abs(t) > MAX_ABS_COORDINATE):
        raise Rejected("out-of-range", f"Scan {index}'s translation {t.tolist()} is beyond "
                                       "±1e9 m.")
    from pyquaternion import Quaternion  # what pye57's own transform uses

    matrix = Quaternion(q).rotation_matrix  # normalised first
    return (None if np.allclose(matrix, np.eye(3), atol=1e-12) else matrix), t


def _plan(scan: Any, index: int) -> _Scan:
    from pye57 import libe57

    if not isinstance(scan, libe57.StructureNode) or not scan.isDefined("points"):
        raise Rejected("invalid-header", f"Scan {index} has no points.")
    points = scan["points"]
    if not isinstance(points, libe57.CompressedVectorNode):
        raise Rejected("invalid-header", f"Scan {index}'s points are not a compressed vector.")
    prototype = libe57.StructureNode(points.prototype())
    names = [prototype.get(i).elementName() for i in range(prototype.childCount())]
    if all(name in names for name in CARTESIAN):
        coordinates, spherical, state = list(CARTESIAN), False, "cartesianInvalidState"
    elif all(name in names for name in SPHERICAL):
        coordinates, spherical, state = list(SPHERICAL), True, "sphericalInvalidState"
    else:
        raise Rejected("unsupported-coordinates",
                       f"Scan {index} has neither cartesianX/Y/Z nor sphericalRange/Azimuth/"
                       f"Elevation (fields: {', '.join(names)}).")
    fields = coordinates + ([state] if state in names else [])
    intensity = None
    if "intensity" in names:
        fields.append("intensity")
        intensity = _limits(scan, prototype, "intensityLimits", "intensityMinimum",
                            "intensityMaximum", "intensity")
    colour = None
    if all(name in names for name in COLOURS.values()):
        fields += list(COLOURS.values())
        colour = _limits(scan, prototype, "colorLimits", "colorRedMinimum", "colorRedMaximum",
                         "colorRed")
    rotation, translation = _pose(scan, index)
    bounds = None
    # The spec's cartesianBounds are in the scan's own frame, but writers (pye57 among
    # them: it moves the two corners by the pose) put other things there once a scan has
    # a pose. So they are checked only where both readings agree: no pose.
    posed = rotation is not None or bool(np.any(translation))
    if not spherical and not posed and scan.isDefined("cartesianBounds"):
        declared = [_number(scan, "cartesianBounds", f"{axis}{end}")
                    for end in ("Minimum", "Maximum") for axis in "xyz"]
        if all(v is not None for v in declared):
            lo, hi = np.array(declared[:3]), np.array(declared[3:])
            if not np.all(np.isfinite(lo)) or not np.all(np.isfinite(hi)):
                raise Rejected("non-finite-values",
                               f"Scan {index}'s cartesianBounds are not finite.")
            if np.any(lo > hi):
                raise Rejected("invalid-bounds", f"Scan {index}'s bounds minimum {lo.tolist()} "
                                                 f"exceeds its maximum {hi.tolist()}.")
            bounds = (lo, hi)
    return _Scan(index=index, points=points, records=int(points.childCount()), fields=fields,
                 spherical=spherical, state=state if state in names else None,
                 rotation=rotation, translation=translation, bounds=bounds,
                 intensity=intensity, colour=colour)


def _to_uint16(values: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    lo, hi = limits
    scaled = (values - lo) * (UINT16_MAX / (hi - lo))
    return np.clip(np.nan_to_num(np.rint(scaled)), 0, UINT16_MAX).astype(np.uint16)


def _read_scan(image: Any, plan: _Scan, *, keep_intensity: bool, keep_colour: bool,
               on_chunk: Callable[[np.ndarray, dict[str, np.ndarray]], None]) -> tuple[int, int]:
    """Read one scan chunk by chunk; returns (records read, points flagged invalid)."""
    from pye57 import libe57
    from pye57.utils import convert_spherical_to_cartesian

    capacity = max(1, min(CHUNK_POINTS, plan.records))
    arrays: dict[str, np.ndarray] = {}
    buffers = libe57.VectorSourceDestBuffer()
    for name in plan.fields:
        dtype = np.int8 if name == plan.state else np.uint16 if name.startswith("color") \
            else np.float64
        arrays[name] = np.empty(capacity, dtype)
        buffers.append(libe57.SourceDestBuffer(image, name, arrays[name], capacity, True, True))
    reader = plan.points.reader(buffers)
    records = invalid = 0
    try:
        while True:
            n = reader.read()
            if n == 0:
                break
            records += n
            if records > plan.records:
                raise Rejected("corrupt", f"Scan {plan.index} yields more than its "
                                          f"{plan.records} declared records.")
            keep = slice(None) if plan.state is None else arrays[plan.state][:n] == 0
            coordinates = np.stack([arrays[name][:n] for name in plan.fields[:3]],
                                   axis=1)[keep]
            invalid += n - len(coordinates)
            if not len(coordinates):
                continue
            if not np.all(np.isfinite(coordinates)):
                raise Rejected("non-finite-values",
                               f"Scan {plan.index} has NaN or infinite coordinates.")
            xyz = convert_spherical_to_cartesian(coordinates) if plan.spherical else coordinates
            if plan.bounds is not None:
                tolerance = 1e-6 * np.maximum(1.0, np.abs(np.concatenate(plan.bounds))) + 1e-4
                if (np.any(xyz.min(axis=0) < plan.bounds[0] - tolerance[:3])
                        or np.any(xyz.max(axis=0) > plan.bounds[1] + tolerance[3:])):
                    raise Rejected("out-of-bounds",
                                   f"Scan {plan.index}'s points span {xyz.min(axis=0).tolist()}-"
                                   f"{xyz.max(axis=0).tolist()}, outside its declared bounds "
                                   f"{plan.bounds[0].tolist()}-{plan.bounds[1].tolist()}.")
            if plan.rotation is not None:
                xyz = xyz @ plan.rotation.T
            xyz = xyz + plan.translation
            if np.any(np.abs(xyz) > MAX_ABS_COORDINATE):
                raise Rejected("out-of-range", f"Scan {plan.index} has coordinates beyond "
                                               "±1e9 m.")
            attributes: dict[str, np.ndarray] = {}
            if keep_intensity and plan.intensity is not None:
                attributes["intensity"] = _to_uint16(arrays["intensity"][:n][keep],
                                                     plan.intensity)
            if keep_colour and plan.colour is not None:
                for column, name in COLOURS.items():
                    attributes[column] = _to_uint16(arrays[name][:n][keep].astype(np.float64),
                                                    plan.colour)
            on_chunk(xyz, attributes)
    finally:
        with contextlib.suppress(Exception):
            reader.close()
    if records < plan.records:
        raise Rejected("truncated", f"Scan {plan.index} holds only {records} of its "
                                    f"{plan.records} declared records.")
    return records, invalid


def _validate_path(path: str, *, size: int, version: str, limits: Limits,
                   on_xyz: Callable[..., None] | None) -> Report:
    from pye57 import libe57

    try:
        image = libe57.ImageFile(path, "r", libe57.CHECKSUM_POLICY_ALL)
    except libe57.E57Exception as exc:
        raise _rejected(exc, "Cannot open the E57 file") from exc
    try:
        try:
            root = image.root()
            if not root.isDefined("data3D"):
                raise Rejected("invalid-header", "The E57 file has no data3D section.")
            data3d = root["data3D"]
            plans = [_plan(data3d[i], i) for i in range(data3d.childCount())]
        except libe57.E57Exception as exc:
            raise _rejected(exc, "Cannot read the E57 structure") from exc
        declared = sum(plan.records for plan in plans)
        if declared == 0:
            raise Rejected("empty-cloud", f"The E57 file's {len(plans)} scans hold no points.")
        if declared > limits.max_points:
            raise Rejected("too-many-points",
                           f"{declared} records declared; the limit is {limits.max_points}.")
        decoded = sum(plan.decoded_bytes for plan in plans)
        if decoded > min(limits.max_decompressed_bytes, size * limits.max_ratio):
            raise Rejected("decompression-bomb",
                           f"{declared} records decode to {decoded} bytes from a {size}-byte "
                           f"file; the limits are {limits.max_decompressed_bytes} bytes and "
                           f"{limits.max_ratio}x the file.")
        with_points = [plan for plan in plans if plan.records]
        keep_intensity = all(plan.intensity is not None for plan in with_points)
        keep_colour = all(plan.colour is not None for plan in with_points)
        mins, maxs, seen = np.full(3, np.inf), np.full(3, -np.inf), 0

        def on_chunk(xyz: np.ndarray, attributes: dict[str, np.ndarray]) -> None:
            nonlocal mins, maxs, seen
            mins = np.minimum(mins, xyz.min(axis=0))
            maxs = np.maximum(maxs, xyz.max(axis=0))
            seen += len(xyz)
            if on_xyz is not None:
                on_xyz(xyz, attributes, source="e57")

        invalid = 0
        for plan in with_points:
            try:
                invalid += _read_scan(image, plan, keep_intensity=keep_intensity,
                                      keep_colour=keep_colour, on_chunk=on_chunk)[1]
            except libe57.E57Exception as exc:
                raise _rejected(exc, f"Scan {plan.index}'s points cannot be read") from exc
        if seen == 0:
            raise Rejected("empty-cloud", f"All {declared} records are flagged invalid.")
        return Report(format="e57", point_count=seen, mins=mins.tolist(), maxs=maxs.tolist(),
                      version=version,
                      extra={"scans": len(plans), "records": declared,
                             "invalid_records": invalid, "intensity": keep_intensity,
                             "colour": keep_colour,
                             "spherical_scans": sum(plan.spherical for plan in plans)})
    finally:
        image.close()


def validate_e57(raw: BinaryIO, *, size: int, limits: Limits,
                 on_xyz: Callable[..., None] | None = None,
                 scratch_dir: str | None = None) -> Report:
    """Validate the E57 file behind `raw` (positioned at 0); chunks go to `on_xyz(xyz,
    attributes, source="e57")` in metres, pose applied, after they passed their checks."""
    head = raw.read(HEADER.size)
    major, minor = _check_file_header(head, size)
    fd, path = tempfile.mkstemp(prefix="d2r-e57-", suffix=".e57", dir=scratch_dir)
    os.close(fd)
    try:
        _copy_to(raw, head, path, size)
        return _validate_path(path, size=size, version=f"{major}.{minor}", limits=limits,
                              on_xyz=on_xyz)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
