"""A scan that finishes processing is judged by its asset's default contract."""

from __future__ import annotations

from typing import Any

import pytest
from django_tenants.utils import schema_context

from inspections import services as inspections_services
from inspections.models import Scan
from quality import services, tasks
from quality.models import QcRun
from tests.conftest import make_user
from tests.inspections.ingest_helpers import fixture_bytes, scan_metadata, upload_whole
from tests.quality.helpers import CONTRACT, PART

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(tasks.qc_run_execute_task, "apply_async",
                        lambda args, queue: calls.append(args[0]))
    from inspections.tasks import scan_process_task

    monkeypatch.setattr(scan_process_task, "delay", lambda *_: None)
    return calls


def _processed_scan(capture: Any, *, with_contract: bool) -> Scan:
    from twins.services import cad_revision_create

    operator = make_user("alpha", role="operator", name="auto")
    with schema_context("alpha"):
        from inspections.models import Asset, Site

        asset = Asset.objects.create(site=Site.objects.create(name="Auto plant"), tag="A-9",
                                     name="Part", kind="part")
        cad_revision_create(asset_id=asset.pk, data=PART.read_bytes(),
                            filename="featuretype.STL", units="in", label="R1",
                            author="design", change_note="")
        if with_contract:
            services.contract_create(asset_id=asset.pk, spec=CONTRACT)
    data = fixture_bytes("simple.laz")
    with capture(execute=True):
        _, last = upload_whole(operator.client, data, scan_metadata(data, asset.pk, "laz"))
    with schema_context("alpha"), capture(execute=True):
        scan_id = last["D2R-Scan-Id"]
        assert inspections_services.scan_process(scan_id=scan_id) == "processed"
        return Scan.objects.get(pk=scan_id)


def test_processed_scan_is_queued_for_judgement(
    queued: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    scan = _processed_scan(django_capture_on_commit_callbacks, with_contract=True)
    with schema_context("alpha"):
        run = QcRun.objects.get(scan=scan)
    assert queued == [str(run.pk)]
    with schema_context("alpha"):  # the same event again: no second run
        services.qc_run_request_for_processed_scan(scan_id=scan.pk)
        assert QcRun.objects.filter(scan=scan).count() == 1


def test_no_contract_no_run(queued: list[str], django_capture_on_commit_callbacks: Any) -> None:
    scan = _processed_scan(django_capture_on_commit_callbacks, with_contract=False)
    with schema_context("alpha"):
        assert not QcRun.objects.filter(scan=scan).exists()
    assert queued == []
