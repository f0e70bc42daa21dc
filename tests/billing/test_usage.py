"""Usage metering: ingestion is metered once per scan; finance sees its workspace only."""

from __future__ import annotations

from typing import Any

import pytest
from django_tenants.utils import schema_context

from inspections import services as inspections_services
from tests.conftest import make_user
from tests.inspections.ingest_helpers import fixture_bytes, make_asset, scan_metadata, upload_whole

pytestmark = pytest.mark.django_db


def test_a_scan_is_metered_once_and_finance_sees_it(
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inspections.tasks import scan_process_task

    monkeypatch.setattr(scan_process_task, "delay", lambda *_: None)
    operator = make_user("alpha", role="operator", name="meter")
    data = fixture_bytes("simple.laz")
    asset = make_asset("alpha")
    for _ in range(2):  # the same scan sent twice: deduplicated, metered once
        with django_capture_on_commit_callbacks(execute=True):
            _, last = upload_whole(operator.client, data, scan_metadata(data, asset.pk, "laz"))
    with schema_context("alpha"), django_capture_on_commit_callbacks(execute=True):
        inspections_services.scan_process(scan_id=last["D2R-Scan-Id"])
    finance = make_user("alpha", role="finance", name="fin")
    usage = finance.client.get("/api/v1/usage?days=7")
    assert usage.status_code == 200
    assert usage.json()["totals"] == {"scan_bytes": len(data), "scans_processed": 1}
    assert operator.client.get("/api/v1/usage").status_code == 403
    beta_finance = make_user("beta", role="finance", name="fin")
    assert beta_finance.client.get("/api/v1/usage").json()["totals"] == {}
    admin_page = finance.client.get("/admin/billing/usagerecord/")
    assert admin_page.status_code == 200
    assert finance.client.get("/admin/inspections/scan/").status_code == 403  # not scans
