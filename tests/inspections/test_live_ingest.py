"""Uploads against a real ASGI server (uvicorn, the streaming handler) with the real
`tuspy` client: a connection killed mid-PATCH, then resume; checksums on the wire."""

from __future__ import annotations

import hashlib
import io
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django_tenants.utils import schema_context
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from tests.conftest import LiveServer, TenantUser, make_user
from tests.inspections.ingest_helpers import (
    make_asset,
    point_celery_at,
    redis_server,
    scan_metadata,
)

CSRF = "c" * 32


@pytest.fixture(scope="module")
def live(live_asgi_server: LiveServer, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """The shared uvicorn server, plus a committed operator and asset."""
    port = live_asgi_server.port
    with django_db_blocker.unblock():
        user = make_user("alpha", role="operator", name="live")
        asset = make_asset("alpha")
        yield {"port": port, "user": user, "asset": asset}
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


def test_redis_restarted_during_ingest_loses_nothing(live: dict[str, Any], tmp_path: Path
                                                     ) -> None:
    """The broker dies before the completing PATCH and comes back empty: the scan is
    recorded anyway, its outbox row is re-sent by the sweep, and a worker processes it."""
    from celery.contrib.testing.worker import start_worker

    from d2r.celery import app
    from inspections import services
    from inspections.models import OutboxMessage, Scan
    from tests.inspections.ingest_helpers import create, fixture_bytes, patch

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    original = app.conf.broker_url
    broker = redis_server(port, tmp_path)
    point_celery_at(url)
    try:
        data = fixture_bytes("autzen_trim.laz")
        client = live["user"].client
        upload_url = create(client, data, scan_metadata(data, live["asset"].pk, "laz")
                            )["Location"]
        assert patch(client, upload_url, 0, data[:300_000]).status_code == 204
        broker.terminate()  # Redis goes down mid-ingest...
        broker.wait(10)
        done = patch(client, upload_url, 300_000, data[300_000:])
        assert done.status_code == 204 and done["D2R-Upload-Status"] == "completed"
        scan_id = done["D2R-Scan-Id"]
        with schema_context("alpha"):
            message = OutboxMessage.objects.get(scan_id=scan_id)
            assert message.dispatched_at is None  # the broker refused; the row remembers
        broker = redis_server(port, tmp_path)  # ...and comes back empty
        point_celery_at(url)
        with schema_context("alpha"):
            assert services.outbox_redispatch_stale() == 1
        with start_worker(app, perform_ping_check=False, pool="solo", queues=["processing"],
                          shutdown_timeout=10):
            deadline = time.monotonic() + 30
            while True:
                with schema_context("alpha"):
                    scan = Scan.objects.get(pk=scan_id)
                if scan.status in ("processed", "rejected"):
                    break
                assert time.monotonic() < deadline, scan.status
                time.sleep(0.2)
        assert (scan.status, scan.point_count) == ("processed", 110_000)
    finally:
        broker.terminate()
        broker.wait(10)
        point_celery_at(original)


def test_the_cli_queues_uploads_saves_the_acknowledgement_and_replays_safely(
    live: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    import json
    import shutil

    from d2r_sdk import Client, SyncQueue, verify_acknowledgement
    from d2r_sdk.cli import main
    from tests.inspections.ingest_helpers import FIXTURES

    scan = tmp_path / "scan.las"
    shutil.copy(FIXTURES / "simple.las", scan)
    headers = [f"{k}: {v}" for k, v in _headers(live["user"]).items()]
    argv = ["--server", f"http://127.0.0.1:{live['port']}", "--queue",
            str(tmp_path / "queue.sqlite3")]
    for header in headers:
        argv += ["--header", header]
    assert main([*argv, "upload", str(scan), "--asset", str(live["asset"].pk),
                 "--device", "edge-7", "--edge-transform", json.dumps([1.0] * 16)]) == 0
    ack = json.loads((tmp_path / "scan.las.ack.json").read_text())
    assert ack["sha256"] == hashlib.sha256(scan.read_bytes()).hexdigest()
    client = Client(f"http://127.0.0.1:{live['port']}", headers=_headers(live["user"]))
    assert verify_acknowledgement(ack, client.public_key())
    assert "done" in capsys.readouterr().out
    # Replaying, or queueing the same scan again, sends nothing new.
    queue = SyncQueue(tmp_path / "queue.sqlite3")
    assert queue.enqueue(scan, asset=live["asset"].pk) == 1
    assert [e["status"] for e in queue.replay(client)] == ["done"]
    # A second copy of the same content elsewhere is deduplicated by the server.
    copy = tmp_path / "copy.las"
    shutil.copy(scan, copy)
    again = client.upload(copy, asset=live["asset"].pk)
    assert again["scan_id"] == ack["scan_id"]
