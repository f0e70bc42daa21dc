"""Check the system libraries the Python wheels need; install them with apt when root.

Runs with the system Python before the virtualenv exists, so it uses the standard
library only. A missing library is never a silent failure: either it is installed
here, or the script stops naming the packages to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# (what needs it, how we detect it, the Debian package that provides it)
REQUIREMENTS: list[tuple[str, str, str]] = [
    ("open3d", "lib:libusb-1.0.so.0", "libusb-1.0-0"),
    ("open3d", "lib:libgomp.so.1", "libgomp1"),
    ("weasyprint", "lib:libpango-1.0.so.0", "libpango-1.0-0"),
    ("weasyprint", "lib:libpangoft2-1.0.so.0", "libpangoft2-1.0-0"),
    ("weasyprint", "lib:libharfbuzz.so.0", "libharfbuzz0b"),
    ("djangosaml2 (SAML signatures)", "bin:xmlsec1", "xmlsec1"),
    ("browser tests (Playwright)", "bin:chromium", "chromium"),
    ("PDF rendering in tests", "bin:pdftoppm", "poppler-utils"),
    ("audit PDF report tests (rendering)", "bin:pdftoppm", "poppler-utils"),
]


# Only `make bench` needs these (peers measured in the same run).
BENCH_REQUIREMENTS: list[tuple[str, str, str]] = [
    ("deviation benchmark (CloudCompare as the peer)", "bin:CloudCompare", "cloudcompare"),
]


def _known_libraries() -> str:
    try:
        return subprocess.run(
            ["ldconfig", "-p"], capture_output=True, text=True, check=False
        ).stdout
    except FileNotFoundError:
        return ""


def missing_packages() -> list[tuple[str, str]]:
    libraries = _known_libraries()
    missing = []
    wanted = REQUIREMENTS + (BENCH_REQUIREMENTS if "--bench" in sys.argv else [])
    for needed_by, probe, package in wanted:
        kind, name = probe.split(":", 1)
        present = shutil.which(name) if kind == "bin" else name in libraries
        if not present:
            missing.append((needed_by, package))
    return missing


def main() -> int:
    missing = missing_packages()
    if not missing:
        return 0
    packages = sorted({package for _, package in missing})
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"Installing system libraries: {' '.join(packages)}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)
        still = missing_packages()
        if not still:
            return 0
        missing = still
    print("These system libraries are missing:", file=sys.stderr)
    for needed_by, package in missing:
        print(f"  {package:24} (needed by {needed_by})", file=sys.stderr)
    print(
        "Install them, e.g.: sudo apt-get install "
        + " ".join(sorted({p for _, p in missing})),
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
