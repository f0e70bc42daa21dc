"""`make bench`: run every benchmark script; each prints `BENCH <name> <value>` lines.

Benchmarks needing Django get the same services as `make run` (embedded or external).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import services  # noqa: E402


def main() -> int:
    env = {**os.environ, **services.up(), "DJANGO_SETTINGS_MODULE": "d2r.settings.local",
           "PYTHONPATH": str(ROOT)}
    selected = sys.argv[1:]
    # The Django benchmarks need the schema, as after `make run` (a no-op when up to date).
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "d2r_migrate", "--verbosity", "0"],
                   env=env, cwd=ROOT, check=True)
    failures = 0
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        if selected and script.stem not in selected:
            continue
        print(f"# {script.name}", flush=True)
        failures += subprocess.run([sys.executable, str(script)], env=env, cwd=ROOT).returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
