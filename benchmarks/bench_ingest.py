"""Scan ingestion throughput (issue 4): a ≥ 1 GB file through the real tus endpoint.

A uvicorn web process (the production ASGI app, streaming handler) receives one
PATCH of the whole file and streams it into the object store in S3 multipart parts,
hashing as it goes. Compared in the same run with this machine's limit for the same
work: `sha256sum` of the file plus a copy into the same object store (boto3's
multipart `upload_file`). Peak RSS of the web process is sampled every 50 ms.

The file is incompressible bytes (what a LAZ scan looks like to the upload path).
`BENCH_INGEST_MB` sets its size (default 1100). Big files are deleted afterwards.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import django

django.setup()

import psutil  # noqa: E402
import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from d2r.db.privileged import privileged  # noqa: E402
from tenants import services as tenant_services  # noqa: E402
from tenants.models import Tenant  # noqa: E402

SCHEMA = "benchingest"
HOST = f"{SCHEMA}.localhost"
SIZE = int(os.environ.get("BENCH_INGEST_MB", "1100")) * 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
CSRF = "b" * 32


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _workspace() -> tuple[int, str]:
    """A benchmark workspace with an operator (session cookie) and an asset."""
    with privileged():
        call_command("d2r_migrate", verbosity=0)
        if not Tenant.objects.filter(schema_name=SCHEMA).exists():
            tenant_services.plans_ensure_defaults()
            tenant_services.tenant_create(slug=SCHEMA, name="Bench ingest", domain=HOST,
                                          admin_email="bench@ingest.test",
                                          plan_code="professional")
    from django.contrib.auth import get_user_model

    from accounts.models import Membership
    from inspections.models import Asset, Site

    with schema_context(SCHEMA):
        user, _ = get_user_model().objects.get_or_create(username="bench-operator")
        Membership.objects.get_or_create(user=user, defaults={"role": "operator"})
        site, _ = Site.objects.get_or_create(name="Bench plant")
        asset, _ = Asset.objects.get_or_create(site=site, tag="B-1", defaults={"name": "Bench"})
        client = Client(HTTP_HOST=HOST)
        client.force_login(user)
        return asset.pk, client.cookies[settings.SESSION_COOKIE_NAME].value


def _make_file(path: Path) -> str:
    block = random.Random(time.time_ns()).randbytes(16 * 1024 * 1024)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        written = 0
        counter = 0
        while written < SIZE:
            piece = block[: min(len(block), SIZE - written)]
            piece = counter.to_bytes(8, "big") + piece[8:]  # no two blocks alike
            out.write(piece)
            digest.update(piece)
            written += len(piece)
            counter += 1
    return digest.hexdigest()


def _limit_seconds(path: Path) -> tuple[float, float]:
    """sha256sum of the file, then a copy of it into the same object store."""
    from django.core.files.storage import default_storage

    start = time.perf_counter()
    subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
    sha_seconds = time.perf_counter() - start
    client = default_storage.connection.meta.client  # type: ignore[attr-defined]
    key = f"tenants/{SCHEMA}/bench/limit-copy"
    start = time.perf_counter()
    client.upload_file(str(path), default_storage.bucket_name, key)  # type: ignore[attr-defined]
    copy_seconds = time.perf_counter() - start
    client.delete_object(Bucket=default_storage.bucket_name, Key=key)  # type: ignore[attr-defined]
    return sha_seconds, copy_seconds


class _FileBody:
    """A file read in 1 MiB blocks (requests/http.client send whatever read returns)."""

    def __init__(self, path: Path) -> None:
        self.handle = path.open("rb")
        self.len = path.stat().st_size

    def read(self, size: int = -1) -> bytes:
        return self.handle.read(1024 * 1024)


def _ingest(path: Path, digest: str, asset_id: int, session: str
            ) -> tuple[float, float, float, str]:
    import base64

    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    web = subprocess.Popen(
        [str(Path(sys.executable).parent / "uvicorn"), "d2r.asgi:application", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env)
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        process = psutil.Process(web.pid)
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], process.memory_info().rss / 1024 / 1024)
            except psutil.Error:
                return
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    base = f"http://127.0.0.1:{port}/api/v1/uploads"
    headers = {"Host": HOST, "Tus-Resumable": "1.0.0", "X-CSRFToken": CSRF,
               "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}; csrftoken={CSRF}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.options(base, headers=headers, timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        meta = {"asset": str(asset_id), "sha256": digest, "encoding": "laz",
                "filename": "bench.laz"}
        encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                           for k, v in meta.items())
        created = requests.post(base, headers={**headers, "Upload-Length": str(SIZE),
                                               "Upload-Metadata": encoded}, timeout=30)
        created.raise_for_status()
        url = f"http://127.0.0.1:{port}{created.headers['Location']}"
        time.sleep(0.2)
        before = psutil.Process(web.pid).memory_info().rss / 1024 / 1024
        start = time.perf_counter()
        response = requests.patch(url, data=_FileBody(path), timeout=3600, headers={
            **headers, "Upload-Offset": "0", "Content-Length": str(SIZE),
            "Content-Type": "application/offset+octet-stream"})
        seconds = time.perf_counter() - start
        if response.status_code != 204 or response.headers.get(
                "D2R-Upload-Status") != "completed":
            raise SystemExit(f"upload failed: {response.status_code} {response.text[:500]}")
        return seconds, peak[0], before, response.headers["D2R-Scan-Id"]
    finally:
        stop.set()
        web.terminate()
        web.wait(30)


def _cleanup(scan_id: str) -> None:
    from inspections import objectstore
    from inspections.models import OutboxMessage, Scan, Upload

    with schema_context(SCHEMA):
        scan = Scan.objects.get(pk=scan_id)
        objectstore.delete(scan.raw_key)
        OutboxMessage.objects.filter(scan=scan).delete()
        Upload.objects.filter(scan=scan).delete()
        scan.delete()


def main() -> None:
    asset_id, session = _workspace()
    with tempfile.TemporaryDirectory(prefix="d2r-bench-ingest-", dir="/tmp") as scratch:
        path = Path(scratch) / "scan.laz"
        digest = _make_file(path)
        sha_seconds, copy_seconds = _limit_seconds(path)
        seconds, peak_rss, idle_rss, scan_id = _ingest(path, digest, asset_id, session)
        path.unlink()
    _cleanup(scan_id)
    mb = SIZE / 1e6
    rate = mb / seconds
    limit_rate = mb / (sha_seconds + copy_seconds)
    print(f"BENCH ingest_file_mb {mb:.0f}")
    print(f"BENCH ingest_seconds {seconds:.2f}")
    print(f"BENCH ingest_mb_per_s {rate:.1f}")
    print(f"BENCH ingest_limit_sha256sum_mb_per_s {mb / sha_seconds:.1f}")
    print(f"BENCH ingest_limit_copy_mb_per_s {mb / copy_seconds:.1f}")
    print(f"BENCH ingest_limit_mb_per_s {limit_rate:.1f}")
    print(f"BENCH ingest_limit_ratio {rate / limit_rate:.2f}")
    print(f"BENCH ingest_peak_rss_mb {peak_rss:.0f}")
    print(f"BENCH ingest_rss_before_upload_mb {idle_rss:.0f}")
    print(f"BENCH ingest_50gb_day_minutes {50e3 / rate / 60:.1f}")


if __name__ == "__main__":
    main()
