"""The web process stays light (issue 4: peak RSS under 150 MB during an upload): the
numeric and document stacks load in the worker, never with the ASGI app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKER_ONLY = (
    "numpy",
    "laspy",
    "lazrs",
    "pyarrow",
    "pandas",
    "open3d",
    "scipy",
    "weasyprint",
    "pyhanko",
    "numba",
    "trimesh",
    "zstandard",
)
PROBE = """
import importlib, json, sys
import d2r.asgi
from django.conf import settings
importlib.import_module(settings.ROOT_URLCONF)
importlib.import_module(settings.PUBLIC_SCHEMA_URLCONF)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_the_asgi_app_and_its_urlconfs_import_no_worker_only_library() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "d2r.settings.test", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    loaded = set(json.loads(out.strip().splitlines()[-1]))
    assert sorted(loaded & set(WORKER_ONLY)) == []
