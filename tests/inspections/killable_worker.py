"""A real Celery worker process for crash tests: `python -m tests.inspections.killable_worker
worker ...` runs `celery -A d2r worker ...`.

With `D2R_TEST_HOLD_FILE` set, the worker stops in the middle of processing a scan: after
the first chunk of points went to the canonical writer, it writes its pid to that file
and waits, so a test knows the scan is claimed and half-processed before it sends
SIGKILL. Nothing else differs from a production worker.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def _hold_mid_processing(marker: Path) -> None:
    from inspections.pointcloud import canonical

    original = canonical.CanonicalWriter.on_points

    def on_points(self: Any, header: Any, points: Any) -> None:
        original(self, header, points)  # some points are in the scratch file
        marker.write_text(str(os.getpid()))
        time.sleep(120)  # the test kills the process here

    canonical.CanonicalWriter.on_points = on_points  # type: ignore[method-assign]


def main() -> None:
    hold = os.environ.get("D2R_TEST_HOLD_FILE")
    if hold:
        _hold_mid_processing(Path(hold))
    from celery.bin.celery import main as celery_main

    sys.argv = ["celery", "-A", "d2r", *sys.argv[1:]]
    celery_main()


if __name__ == "__main__":
    main()
