"""Uploads against a real ASGI server (uvicorn, the streaming handler) with the real
`tuspy` client: a connection killed mid-PATCH, then resume; checksums on the wire."""

from __future__ import annotations

import hashlib
import io
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from django.conf import settings
from django_tenants.utils import schema_context
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from d2r.asgi import application
from tests.conftest import TenantUser, make_user
from tests.inspections.ingest_helpers import make_asset, scan_metadata

CSRF = "c" * 32


@pytest.fixture(scope="module")
def live(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """uvicorn in a thread on a free port, plus a committed operator and asset."""
    with django_db_blocker.unblock():
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        user = make_user("alpha", role="operator", name="live")
        asset = make_asset("alpha")
        yield {"port": port, "user": user, "asset": asset}
        server.should_exit = True
        thread.join(10)
        with schema_context("alpha"):
            from inspections.models import OutboxMessage, Scan, Upload

            OutboxMessage.objects.all().delete()
            Upload.objects.all().delete()
            Scan.objects.all().delete()
            asset.delete()
            asset.site.delete()
            type(user.user).objects.filter(pk=user.user.pk).delete()  # type: ignore[attr-defined]


def _headers(user: TenantUser) -> dict[str, str]:
    session = user.client.cookies[settings.SESSION_COOKIE_NAME].value
    return {"Host": "alpha.localhost", "X-CSRFToken": CSRF,
            "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}; csrftoken={CSRF}"}


def _client(live: dict[str, Any]) -> tus_client.TusClient:
    return tus_client.TusClient(f"http://127.0.0.1:{live['port']}/api/v1/uploads",
                                headers=_headers(live["user"]))


def _data(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def test_tuspy_uploads_in_chunks_with_checksums(live: dict[str, Any]) -> None:
    data = _data(7 * 1024 * 1024 + 99)
    meta = scan_metadata(data, live["asset"].pk, "laz")
    meta = {k: v if isinstance(v, str) else str(v).replace("'", '"') for k, v in meta.items()}
    uploader = _client(live).uploader(file_stream=io.BytesIO(data), chunk_size=3 * 1024 * 1024,
                                      metadata=meta, upload_checksum=True)
    uploader.upload()
    headers = {k.lower(): v for k, v in uploader.request.response_headers.items()}
    assert headers["d2r-upload-status"] == "completed"
    with schema_context("alpha"):
        from inspections.models import Scan

        assert Scan.objects.get(pk=headers["d2r-scan-id"]).sha256 == (
            hashlib.sha256(data).hexdigest())


def test_a_connection_killed_mid_patch_resumes_where_the_bytes_stopped(
    live: dict[str, Any],
) -> None:
    data = _data(12 * 1024 * 1024 + 7)
    meta = scan_metadata(data, live["asset"].pk, "laz")
    meta = {k: v if isinstance(v, str) else str(v).replace("'", '"') for k, v in meta.items()}
    tus = _client(live)
    uploader = tus.uploader(file_stream=io.BytesIO(data), metadata=meta)
    url = uploader.create_url()
    path = url.split(str(live["port"]), 1)[-1] if url.startswith("http") else url
    # A raw PATCH that announces the whole file, sends 6,000,000 bytes and dies.
    sent = 6_000_000
    head = (f"PATCH {path} HTTP/1.1\r\nHost: alpha.localhost\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
            f"Content-Length: {len(data)}\r\nX-CSRFToken: {CSRF}\r\n"
            f"Cookie: {_headers(live['user'])['Cookie']}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", live["port"])) as sock:
        sock.sendall(head + data[:sent])
        time.sleep(0.3)
        sock.shutdown(socket.SHUT_RDWR)
    # tuspy resumes from the server's offset once the server has staged what arrived.
    deadline = time.monotonic() + 15
    while True:
        try:
            resumed = tus.uploader(file_stream=io.BytesIO(data), url=url, metadata=meta)
            if resumed.offset == sent:
                break
        except TusCommunicationError:
            pass
        assert time.monotonic() < deadline, "the server never committed the received bytes"
        time.sleep(0.1)
    resumed.upload()
    headers = {k.lower(): v for k, v in resumed.request.response_headers.items()}
    assert headers["d2r-upload-status"] == "completed"
    with schema_context("alpha"):
        from inspections.models import Scan

        assert Scan.objects.get(pk=headers["d2r-scan-id"]).sha256 == (
            hashlib.sha256(data).hexdigest())
