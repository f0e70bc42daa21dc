"""Row history (django-pghistory) of the records auditors care about, with who and why."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from inspections.models import Asset, AssetEvent, Site
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_an_api_change_is_recorded_with_user_and_request_id() -> None:
    qc = make_user("alpha", role="qc_manager", name="history")
    with schema_context("alpha"):
        asset = Asset.objects.create(site=Site.objects.create(name="History plant"),
                                     tag="H-1", name="Pump")
    response = qc.client.patch(f"/api/v1/assets/{asset.pk}", {"name": "Pump (rebuilt)"},
                               content_type="application/json",
                               HTTP_X_REQUEST_ID="change-4711")
    assert response.status_code == 200
    with schema_context("alpha"):
        events = list(AssetEvent.objects.filter(pgh_obj=asset).order_by("pgh_id"))
        assert [e.pgh_label for e in events] == ["insert", "update"]
        assert [e.name for e in events] == ["Pump", "Pump (rebuilt)"]
        context = events[-1].pgh_context
        assert context.metadata["request_id"] == "change-4711"
        assert context.metadata["user"] == qc.user.pk  # type: ignore[attr-defined]
        assert context.metadata["url"] == f"/api/v1/assets/{asset.pk}"
    with schema_context("beta"):  # history stays in the workspace's own schema
        assert not AssetEvent.objects.filter(name="Pump (rebuilt)").exists()


def test_history_rows_cannot_be_edited_or_deleted_by_the_workspace() -> None:
    from django.db import ProgrammingError, connection, transaction

    with schema_context("alpha"):
        Asset.objects.create(site=Site.objects.create(name="Immutable plant"), tag="I-1",
                             name="Valve")
        for statement in ("UPDATE inspections_assetevent SET name = 'forged'",
                          "DELETE FROM inspections_assetevent"):
            with pytest.raises(ProgrammingError, match="permission denied"), \
                    transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement)
