"""The processing worker: states, rejection reasons, crash recovery, the outbox."""

from __future__ import annotations

import gzip
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from inspections import objectstore, services
from inspections.models import OutboxMessage, Scan
from tests.conftest import TenantUser, make_user
from tests.inspections.ingest_helpers import fixture_bytes, make_asset, scan_metadata, upload_whole

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db: None) -> TenantUser:
    return make_user("alpha", role="operator", name="op")


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(services, "publish", lambda schema, topic, event: sent.append(
        {"schema": schema, "topic": topic, **event}))
    return sent


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from inspections.tasks import scan_process_task

    calls: list[str] = []
    monkeypatch.setattr(scan_process_task, "delay", calls.append)
    return calls


def received_scan(operator: TenantUser, data: bytes, encoding: str, capture: Any) -> Scan:
    asset = make_asset("alpha")
    with capture(execute=True):
        _, last = upload_whole(operator.client, data, scan_metadata(data, asset.pk, encoding))
    with schema_context("alpha"):
        return Scan.objects.get(pk=last["D2R-Scan-Id"])


def test_a_good_scan_is_processed_into_canonical_laz(
    operator: TenantUser, events: list[dict[str, Any]], dispatched: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    scan = received_scan(operator, fixture_bytes("simple.laz"), "laz",
                         django_capture_on_commit_callbacks)
    assert dispatched == [str(scan.pk)]  # the outbox row was sent on commit
    with schema_context("alpha"), django_capture_on_commit_callbacks(execute=True):
        assert services.scan_process(scan_id=scan.pk) == "processed"
        scan.refresh_from_db()
        assert (scan.status, scan.point_count, scan.attempts) == ("processed", 1065, 1)
        assert scan.canonical_key == f"tenants/alpha/scans/canonical/{scan.pk}.parquet"
        canonical = b"".join(objectstore.iter_chunks(scan.canonical_key))
        assert OutboxMessage.objects.get(scan=scan).done_at is not None
        assert services.scan_process(scan_id=scan.pk) == "skipped"  # redelivery: no-op
    import io

    from inspections.pointcloud.canonical import read_xyz

    assert len(read_xyz(io.BytesIO(canonical))) == 1065
    states = [e["data"]["status"] for e in events if e["kind"] == "scan.status"]
    assert states == ["received", "processing", "processed"]
    assert {e["schema"] for e in events} == {"alpha"}
    api = operator.client.get(f"/api/v1/scans/{scan.pk}").json()
    assert (api["status"], api["point_count"]) == ("processed", 1065)


def test_a_bad_scan_ends_rejected_with_its_reason_in_the_api(
    operator: TenantUser, events: list[dict[str, Any]], dispatched: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    data = gzip.compress(fixture_bytes("simple.las"))[:6000]
    scan = received_scan(operator, data, "las+gzip", django_capture_on_commit_callbacks)
    with schema_context("alpha"), django_capture_on_commit_callbacks(execute=True):
        assert services.scan_process(scan_id=scan.pk) == "rejected"
    api = operator.client.get(f"/api/v1/scans/{scan.pk}").json()
    assert (api["status"], api["rejection_reason"]) == ("rejected", "truncated")
    assert "Compressed stream" in api["rejection_detail"]
    assert events[-1]["data"] == {"scan_id": str(scan.pk), "status": "rejected",
                                  "reason": "truncated"}


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in the worker gets to handle it."""


def _dies(*args: Any, **kwargs: Any) -> Any:
    """A validate() whose worker is killed mid-way."""
    raise WorkerKilled


def test_a_worker_killed_mid_processing_leaves_the_scan_to_be_processed_once(
    operator: TenantUser, events: list[dict[str, Any]], dispatched: list[str],
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import inspections.pointcloud.validate as validate_module

    scan = received_scan(operator, fixture_bytes("simple.las"), "las",
                         django_capture_on_commit_callbacks)
    real_validate = validate_module.validate

    monkeypatch.setattr(validate_module, "validate", _dies)
    with schema_context("alpha"):
        with pytest.raises(WorkerKilled):
            services.scan_process(scan_id=scan.pk)
        scan.refresh_from_db()
        dead_token = scan.lease_token
        assert (scan.status, scan.attempts) == ("processing", 1)
        monkeypatch.setattr(validate_module, "validate", real_validate)
        # While the dead worker's lease runs, nobody else starts and nothing is re-sent.
        assert services.scan_process(scan_id=scan.pk) == "skipped"
        dispatched.clear()
        assert services.outbox_redispatch_stale() == 0
        # The lease expires: the sweep re-sends, the next worker processes it.
        later = timezone.now() + timedelta(seconds=3600)
        Scan.objects.filter(pk=scan.pk).update(lease_until=timezone.now())
        OutboxMessage.objects.filter(scan=scan).update(dispatched_at=timezone.now()
                                                       - timedelta(hours=1))
        assert services.outbox_redispatch_stale(now=later) == 1
        assert dispatched == [str(scan.pk)]
        assert services.scan_process(scan_id=scan.pk) == "processed"
        # The dead worker, were it to come back, cannot finish the scan a second time.
        assert services._scan_finish(scan.pk, dead_token, status="rejected") == "skipped"
        scan.refresh_from_db()
        assert (scan.status, scan.attempts, scan.point_count) == ("processed", 2, 1065)
        assert OutboxMessage.objects.get(scan=scan).done_at is not None
        assert services.outbox_redispatch_stale(now=later) == 0


def test_a_scan_that_kills_its_worker_every_time_is_rejected_not_retried_forever(
    operator: TenantUser, events: list[dict[str, Any]], dispatched: list[str],
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import inspections.pointcloud.validate as validate_module

    scan = received_scan(operator, fixture_bytes("simple.las"), "las",
                         django_capture_on_commit_callbacks)

    monkeypatch.setattr(validate_module, "validate", _dies)
    with schema_context("alpha"):
        for attempt in range(1, services.MAX_PROCESSING_ATTEMPTS + 1):
            with pytest.raises(WorkerKilled):
                services.scan_process(scan_id=scan.pk)
            Scan.objects.filter(pk=scan.pk).update(lease_until=timezone.now())  # lease expires
            scan.refresh_from_db()
            assert (scan.status, scan.attempts) == ("processing", attempt)
        assert services.scan_process(scan_id=scan.pk) == "rejected"
        scan.refresh_from_db()
        assert (scan.status, scan.rejection_reason) == ("rejected", "processing-failed")
        assert f"stopped {services.MAX_PROCESSING_ATTEMPTS} times" in scan.rejection_detail
        assert services.outbox_redispatch_stale(now=timezone.now() + timedelta(hours=1)) == 0


def test_unexpected_errors_retry_then_reject_never_stick(
    operator: TenantUser, events: list[dict[str, Any]], dispatched: list[str],
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import inspections.pointcloud.validate as validate_module

    scan = received_scan(operator, fixture_bytes("simple.las"), "las",
                         django_capture_on_commit_callbacks)

    def breaks(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("object store hiccup")

    monkeypatch.setattr(validate_module, "validate", breaks)
    with schema_context("alpha"):
        for _ in range(services.MAX_PROCESSING_ATTEMPTS - 1):
            with pytest.raises(RuntimeError):
                services.scan_process(scan_id=scan.pk)
            assert Scan.objects.get(pk=scan.pk).status == "received"
        assert services.scan_process(scan_id=scan.pk) == "rejected"
        assert Scan.objects.get(pk=scan.pk).rejection_reason == "processing-failed"
