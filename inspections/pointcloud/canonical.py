"""The canonical form of a validated scan: one LAZ 1.4 file (ADR 0003).

Written in the validation pass, chunk by chunk, to a local scratch file of the
worker (the output is compressed; the scratch file is deleted after upload).
LAS/LAZ inputs keep their point format, scales, offsets and VLRs; PLY vertices
become point format 6 at 0.1 mm resolution.
"""

from __future__ import annotations

import copy
from typing import Any, BinaryIO

import laspy
import numpy as np

PLY_SCALE = 1e-4


class CanonicalWriter:
    """Receives validated chunks (`on_points` / `on_xyz`) and writes LAZ to `dest`."""

    def __init__(self, dest: BinaryIO) -> None:
        self.dest = dest
        self.writer: Any = None
        self.count = 0

    def on_points(self, header: Any, points: Any) -> None:
        if self.writer is None:
            new = copy.deepcopy(header)
            new.evlrs = []
            # COPC's hierarchy VLRs describe the source's octree, not this file.
            new.vlrs = [v for v in new.vlrs if getattr(v, "user_id", "") != "copc"]
            self.writer = laspy.LasWriter(self.dest, header=new, do_compress=True,
                                          closefd=False)
        self.writer.write_points(points)
        self.count += len(points)

    def on_xyz(self, xyz: np.ndarray) -> None:
        if self.writer is None:
            header = laspy.LasHeader(point_format=6, version="1.4")
            header.scales = np.array([PLY_SCALE] * 3)
            header.offsets = np.floor(xyz.min(axis=0))
            self.writer = laspy.LasWriter(self.dest, header=header, do_compress=True,
                                          closefd=False)
        record = laspy.ScaleAwarePointRecord.zeros(len(xyz), header=self.writer.header)
        record.x, record.y, record.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        self.writer.write_points(record)
        self.count += len(xyz)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
