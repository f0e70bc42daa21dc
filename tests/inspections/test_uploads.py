"""tus uploads through the API: creation, resume, checksums, sizes, dedup, isolation."""

from __future__ import annotations

import base64
import hashlib
import random
from typing import Any

import pytest
from django_tenants.utils import schema_context

from inspections import acknowledgements, objectstore, services
from inspections.models import OutboxMessage, Scan, Upload
from tests.conftest import TenantUser, make_user
from tests.inspections.ingest_helpers import (
    TUS,
    create,
    fixture_bytes,
    make_asset,
    patch,
    scan_metadata,
    upload_whole,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_parts(settings: Any) -> None:
    settings.INGEST_PART_SIZE = 5 * 1024 * 1024  # S3's minimum: several parts per big file


def big_bytes(size: int = 11 * 1024 * 1024 + 12_345) -> bytes:
    """Bytes for the upload layer only (never processed): three parts, the last short."""
    return random.Random(size).randbytes(size)


@pytest.fixture
def operator(db: None) -> TenantUser:
    return make_user("alpha", role="operator", name="op")


@pytest.fixture
def asset(db: None) -> Any:
    return make_asset("alpha")


def test_options_describes_the_tus_server(operator: TenantUser) -> None:
    response = operator.client.options("/api/v1/uploads")
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert response["Tus-Extension"] == "creation,expiration,checksum,termination"
    assert response["Tus-Checksum-Algorithm"] == "sha256,sha1"


def test_upload_in_chunks_creates_a_scan_with_a_signed_acknowledgement(
    operator: TenantUser, asset: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    data = big_bytes()
    meta = scan_metadata(data, asset.pk, "laz")
    with django_capture_on_commit_callbacks() as callbacks:
        url, last = upload_whole(operator.client, data, meta, chunk=4_000_000)
    assert last["Tus-Resumable"] == "1.0.0"
    assert last["Upload-Offset"] == str(len(data))
    assert last["D2R-Upload-Status"] == "completed"
    assert last["D2R-Deduplicated"] == "false"
    with schema_context("alpha"):
        scan = Scan.objects.get(pk=last["D2R-Scan-Id"])
        assert (scan.status, scan.size_bytes, scan.sha256) == (
            "received", len(data), hashlib.sha256(data).hexdigest())
        assert (scan.device, scan.firmware, scan.cad_revision, scan.operator) == (
            "edge-7", "2.4.1", "R3", "kim")
        assert scan.edge_transform[0] == 1.0 and scan.calibration == {"k1": 0.01}
        stored = hashlib.sha256()
        for chunk in objectstore.iter_chunks(scan.raw_key):
            stored.update(chunk)
        assert stored.hexdigest() == scan.sha256
        assert scan.raw_key.startswith("tenants/alpha/scans/raw/")
        assert OutboxMessage.objects.filter(scan=scan, done_at__isnull=True).count() == 1
    # The on-commit hooks enqueue processing and publish the state.
    assert len(callbacks) >= 2
    ack = operator.client.get(f"{url}/acknowledgement").json()
    assert ack["scan_id"] == str(scan.pk) and ack["sha256"] == scan.sha256
    key = operator.client.get("/api/v1/uploads/acknowledgement-key").json()
    assert acknowledgements.verify(ack, base64.b64decode(key["public_key"]))
    assert not acknowledgements.verify({**ack, "size_bytes": 1}, base64.b64decode(
        key["public_key"]))
    state = operator.client.get(url).json()
    assert (state["status"], state["scan_status"]) == ("completed", "received")


def test_head_reports_the_committed_offset_and_resume_continues(
    operator: TenantUser, asset: Any,
) -> None:
    data = fixture_bytes("simple.las")
    created = create(operator.client, data, scan_metadata(data, asset.pk))
    url = created["Location"]
    assert patch(operator.client, url, 0, data[:10_000]).status_code == 204
    head = operator.client.head(url, **TUS)
    assert (head.status_code, head["Upload-Offset"], head["Upload-Length"]) == (
        200, "10000", str(len(data)))
    assert "Upload-Expires" in head
    stale = patch(operator.client, url, 0, data[:10_000])
    assert stale.status_code == 409
    assert stale.json()["type"].endswith("/offset-conflict")
    assert stale["Tus-Resumable"] == "1.0.0"
    done = patch(operator.client, url, 10_000, data[10_000:])
    assert done.status_code == 204 and done["D2R-Upload-Status"] == "completed"


def test_resume_in_another_process_hashes_the_stored_object(operator: TenantUser, asset: Any
                                                            ) -> None:
    data = big_bytes(6 * 1024 * 1024)
    url = create(operator.client, data, scan_metadata(data, asset.pk, "laz"))["Location"]
    patch(operator.client, url, 0, data[:5_500_000])
    services._HASHERS.clear()  # as if the next PATCH reached another web process
    done = patch(operator.client, url, 5_500_000, data[5_500_000:])
    assert done["D2R-Upload-Status"] == "completed"


def test_wrong_chunk_checksum_is_refused_and_nothing_is_kept(operator: TenantUser,
                                                             asset: Any) -> None:
    data = fixture_bytes("simple.las")
    url = create(operator.client, data, scan_metadata(data, asset.pk))["Location"]
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    response = patch(operator.client, url, 0, data[:20_000],
                     HTTP_UPLOAD_CHECKSUM=f"sha256 {wrong}")
    assert response.status_code == 460
    assert response.json()["type"].endswith("/checksum-mismatch")
    assert operator.client.head(url, **TUS)["Upload-Offset"] == "0"
    right = base64.b64encode(hashlib.sha1(data[:20_000], usedforsecurity=False).digest()).decode()
    ok = patch(operator.client, url, 0, data[:20_000], HTTP_UPLOAD_CHECKSUM=f"sha1 {right}")
    assert (ok.status_code, ok["Upload-Offset"]) == (204, "20000")


def test_wrong_declared_sha256_is_refused_at_completion(operator: TenantUser, asset: Any
                                                        ) -> None:
    data = fixture_bytes("simple.las")
    meta = scan_metadata(data, asset.pk, sha256="ab" * 32)
    url = create(operator.client, data, meta)["Location"]
    response = patch(operator.client, url, 0, data)
    assert response.status_code == 460
    assert response.json()["type"].endswith("/checksum-mismatch")
    assert operator.client.get(url).json()["failure_reason"] == "checksum-mismatch"
    assert operator.client.head(url, **TUS).status_code == 410
    with schema_context("alpha"):
        assert not Scan.objects.filter(sha256=hashlib.sha256(data).hexdigest()).exists()


def test_size_mismatches_are_refused(operator: TenantUser, asset: Any) -> None:
    data = fixture_bytes("simple.las")
    meta = scan_metadata(data, asset.pk)
    declared = create(operator.client, data, meta, length=len(data) - 1)
    assert declared.status_code == 400
    assert declared.json()["type"].endswith("/size-mismatch")
    meta.pop("size")
    url = create(operator.client, data[:-10], meta, length=len(data) - 10)["Location"]
    overrun = patch(operator.client, url, 0, data)
    assert overrun.status_code == 413
    assert overrun.json()["type"].endswith("/size-mismatch")
    assert operator.client.head(url, **TUS)["Upload-Offset"] == "0"
    empty = create(operator.client, b"", {**meta, "sha256": hashlib.sha256(b"").hexdigest()})
    assert empty.status_code == 400


def test_the_same_file_twice_is_deduplicated(operator: TenantUser, asset: Any) -> None:
    data = fixture_bytes("simple.laz")
    _, first = upload_whole(operator.client, data, scan_metadata(data, asset.pk, "laz"))
    url, second = upload_whole(operator.client, data, scan_metadata(data, asset.pk, "laz"))
    assert second["D2R-Scan-Id"] == first["D2R-Scan-Id"]
    assert second["D2R-Deduplicated"] == "true"
    assert operator.client.get(f"{url}/acknowledgement").json()["deduplicated"] is True
    with schema_context("alpha"):
        assert Scan.objects.filter(sha256=hashlib.sha256(data).hexdigest()).count() == 1
        assert OutboxMessage.objects.filter(scan_id=first["D2R-Scan-Id"]).count() == 1


def test_idempotency_key_returns_the_same_upload(operator: TenantUser, asset: Any) -> None:
    data = fixture_bytes("simple.las")
    meta = scan_metadata(data, asset.pk)
    first = create(operator.client, data, meta, HTTP_IDEMPOTENCY_KEY="dev7-0001")
    again = create(operator.client, data, meta, HTTP_IDEMPOTENCY_KEY="dev7-0001")
    assert again.status_code == 201 and again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    other = create(operator.client, data[:-1], {**meta, "size": str(len(data) - 1)},
                   HTTP_IDEMPOTENCY_KEY="dev7-0001")
    assert other.status_code == 422
    with schema_context("alpha"):
        assert Upload.objects.filter(idempotency_key="dev7-0001").count() == 1


def test_termination_closes_the_upload(operator: TenantUser, asset: Any) -> None:
    data = fixture_bytes("simple.las")
    url = create(operator.client, data, scan_metadata(data, asset.pk))["Location"]
    patch(operator.client, url, 0, data[:1000])
    assert operator.client.delete(url, **TUS).status_code == 204
    assert operator.client.head(url, **TUS).status_code == 410
    gone = patch(operator.client, url, 1000, data[1000:])
    assert gone.status_code == 410 and gone.json()["type"].endswith("/upload-gone")


def test_expired_uploads_are_refused_and_swept(operator: TenantUser, asset: Any) -> None:
    from django.utils import timezone

    data = fixture_bytes("simple.las")
    url = create(operator.client, data, scan_metadata(data, asset.pk))["Location"]
    with schema_context("alpha"):
        Upload.objects.update(expires_at=timezone.now())
    expired = patch(operator.client, url, 0, data)
    assert expired.status_code == 410 and expired.json()["type"].endswith("/upload-expired")
    with schema_context("alpha"):
        assert services.uploads_expire() == 1
        assert Upload.objects.get().status == "expired"


def test_bad_metadata_and_tus_version_are_refused(operator: TenantUser, asset: Any) -> None:
    data = fixture_bytes("simple.las")
    bad = create(operator.client, data, scan_metadata(data, asset.pk, encoding="pts"))
    assert bad.status_code == 400 and bad.json()["type"].endswith("/validation-error")
    assert bad["Tus-Resumable"] == "1.0.0"
    old = operator.client.post("/api/v1/uploads", HTTP_TUS_RESUMABLE="0.2.2",
                               HTTP_UPLOAD_LENGTH="10")
    assert old.status_code == 412 and old["Tus-Version"] == "1.0.0"


def test_viewers_cannot_upload_and_strangers_cannot_see(asset: Any) -> None:
    data = fixture_bytes("simple.las")
    viewer = make_user("alpha", role="viewer", name="viewer")
    assert create(viewer.client, data, scan_metadata(data, asset.pk)).status_code == 403
    operator = make_user("alpha", role="operator", name="op2")
    url = create(operator.client, data, scan_metadata(data, asset.pk))["Location"]
    beta = make_user("beta", role="owner", name="boss")
    for response in (beta.client.get(url), patch(beta.client, url, 0, data),
                     beta.client.delete(url, **TUS), beta.client.get(f"{url}/acknowledgement")):
        assert response.status_code == 404
        assert response.json()["type"].endswith("/not-found")
    assert beta.client.head(url, **TUS).status_code == 404
    assert operator.client.head(url, **TUS).status_code == 200


def test_a_device_uploads_with_its_own_key_and_is_named_by_it(
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Devices reach the upload endpoint with their credential alone (no workspace host)."""
    from django.test import Client

    from devices import services as device_services
    from inspections.models import Scan
    from inspections.tasks import scan_process_task

    monkeypatch.setattr(scan_process_task, "delay", lambda *_: None)
    with schema_context("alpha"):
        device = device_services.device_register(serial="EDGE-UP", model="Edge", actor="t")
        device_services.device_transition(device_id=device.pk, to="active", actor="t")
        key = device_services.device_api_key_issue(device_id=device.pk, actor="t").key
    asset = make_asset("alpha")
    data = fixture_bytes("simple.laz")
    client = Client(HTTP_HOST="api.localhost", HTTP_AUTHORIZATION=f"Api-Key {key}")
    meta = scan_metadata(data, asset.pk, "laz") | {"device": "SOMEONE-ELSE"}
    with django_capture_on_commit_callbacks(execute=True):
        _, last = upload_whole(client, data, meta)
    with schema_context("alpha"):
        assert Scan.objects.get(pk=last["D2R-Scan-Id"]).device == "device:EDGE-UP"
