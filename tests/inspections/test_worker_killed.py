"""A real Celery worker process SIGKILLed in the middle of processing a scan.

Complements the in-process simulation in test_processing.py (which also checks that
nothing is re-sent while the dead worker's lease runs): here the worker is a separate
`celery worker` process on a private Redis broker, killed with SIGKILL while it holds the
scan's lease with half of the points written. The lease expires, the beat's outbox sweep
runs on a second worker, and the scan ends processed exactly once in effect.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.conftest import make_user
from tests.inspections.ingest_helpers import (
    fixture_bytes,
    free_port,
    make_asset,
    point_celery_at,
    redis_server,
    scan_metadata,
    upload_whole,
)

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 2  # the first worker's processing lease: expires soon after the kill


def _wait_for(condition: Any, what: str, timeout: float = 60.0, log: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}" + (f"\n{log()}" if log else ""))
        time.sleep(0.1)


def _unique_las() -> bytes:
    """simple.las with a fresh System Identifier: a valid scan no other test has sent."""
    data = bytearray(fixture_bytes("simple.las"))
    data[26:58] = uuid.uuid4().hex.encode()
    return bytes(data)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    """A private Redis: parallel test runs cannot take this test's tasks, nor it theirs."""
    from d2r.celery import app

    port = free_port()
    process = redis_server(port, tmp_path)
    original = app.conf.broker_url
    url = f"redis://127.0.0.1:{port}/1"  # what the test settings make of REDIS_URL .../0
    point_celery_at(url)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        point_celery_at(original)
        process.terminate()
        process.wait(10)


class Workers:
    """Real `celery worker` processes on the test database and the private broker."""

    def __init__(self, broker: str, directory: Path) -> None:
        parts = urlsplit(os.environ["DATABASE_URL"])
        database = urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "d2r.settings.test",
            "DATABASE_URL": database,
            "REDIS_URL": broker,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
        }
        self.directory = directory
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, **env: str) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.inspections.killable_worker",
                "worker",
                "-Q",
                "processing",
                "-P",
                "solo",
                "-n",
                f"{name}-{os.getpid()}@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture
def workers(broker: str, tmp_path: Path, django_db_setup: None) -> Iterator[Workers]:
    pool = Workers(broker, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def committed(django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """An operator and an asset committed for the worker processes to see."""
    with django_db_blocker.unblock():
        user = make_user("alpha", role="operator", name=f"crash-{uuid.uuid4().hex[:8]}")
        asset = make_asset("alpha")
        yield {"user": user, "asset": asset, "blocker": django_db_blocker}
        from inspections.models import OutboxMessage, Scan, Upload

        # Usage rows stay: the ledger is append-only for workspace roles (and keyed by
        # scan id, so they never collide with another test's).
        with schema_context("alpha"):
            scans = list(Scan.objects.filter(asset=asset).values_list("pk", flat=True))
            OutboxMessage.objects.filter(scan_id__in=scans).delete()
            Upload.objects.filter(asset=asset).delete()
            Scan.objects.filter(pk__in=scans).delete()
            asset.delete()
            asset.site.delete()
            type(user.user).objects.filter(pk=user.user.pk).delete()  # type: ignore[attr-defined]


def test_a_worker_sigkilled_mid_processing_is_recovered_and_the_scan_processed_once(
    committed: dict[str, Any],
    workers: Workers,
    tmp_path: Path,
) -> None:
    from billing.models import UsageRecord
    from inspections import objectstore, services
    from inspections.models import OutboxMessage, Scan
    from inspections.tasks import outbox_sweep_task

    marker = tmp_path / "holding"
    # Given a worker that will stop half-way through the next scan (a 2 s lease)...
    first = workers.start(
        "first", D2R_TEST_HOLD_FILE=str(marker), INGEST_PROCESSING_LEASE_SECONDS=str(LEASE_SECONDS)
    )
    with committed["blocker"].unblock():
        data = _unique_las()
        # ...when a scan is received (its outbox row sends the task on commit)...
        _, last = upload_whole(
            committed["user"].client, data, scan_metadata(data, committed["asset"].pk, "las")
        )
        scan_id = last["D2R-Scan-Id"]
        _wait_for(
            lambda: marker.exists() and marker.read_text(),
            "the first worker to be mid-processing",
            60,
            lambda: workers.log("first"),
        )
        assert int(marker.read_text()) == first.pid
        with schema_context("alpha"):
            held = Scan.objects.get(pk=scan_id)
        assert (held.status, held.attempts) == ("processing", 1)
        dead_token = held.lease_token

        # ...and the worker is SIGKILLed while it holds the lease with points half written.
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        # A second worker; the stale interval 0 lets the sweep re-send at once.
        workers.start("second", INGEST_OUTBOX_STALE_SECONDS="0")
        with schema_context("alpha"):
            assert Scan.objects.get(pk=scan_id).status == "processing"  # nobody finished it
        _wait_for(
            lambda: held.lease_until is not None and timezone.now() > held.lease_until,
            "the dead worker's lease to expire",
            LEASE_SECONDS + 5,
        )

        # Then the beat's outbox sweep re-sends it and the second worker processes it.
        with schema_context("public"):  # as beat sends it
            outbox_sweep_task.delay()
        with schema_context("alpha"):
            scan = _wait_for(
                lambda: Scan.objects.filter(
                    pk=scan_id, status__in=("processed", "rejected")
                ).first(),
                "the second worker to process the scan",
                log=lambda: workers.log("second"),
            )
            assert (scan.status, scan.attempts, scan.point_count) == ("processed", 2, 1065)
            # Once in effect: one canonical object, one outbox row done, one usage record.
            listing = objectstore._client().list_objects_v2(
                Bucket=objectstore._bucket(),
                Prefix=objectstore.key_for(f"scans/canonical/{scan_id}"),
            )
            assert [o["Key"] for o in listing.get("Contents", [])] == [scan.canonical_key]
            assert objectstore.size(scan.canonical_key) > 0
            message = OutboxMessage.objects.get(scan_id=scan_id)
            assert message.done_at is not None and message.dispatch_count == 2
            assert (
                UsageRecord.objects.filter(idempotency_key=f"scan-processed:{scan_id}").count() == 1
            )
            assert UsageRecord.objects.filter(idempotency_key=f"scan-bytes:{scan_id}").count() == 1
            # Were the dead worker to come back, it could not finish the scan again; a
            # redelivered task is a no-op, and the sweep has nothing left to send.
            assert services._scan_finish(scan.pk, dead_token, status="rejected") == "skipped"
            assert services.scan_process(scan_id=scan.pk) == "skipped"
            assert services.outbox_redispatch_stale() == 0
            assert Scan.objects.get(pk=scan_id).status == "processed"
