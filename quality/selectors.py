"""Reads of the quality app (the workspace is the connection's schema)."""

from __future__ import annotations

import uuid

from django.db.models import Prefetch, QuerySet

from quality.models import QcResult, QcReview, QcRun, ToleranceContract


def contract_list(*, asset_id: int | None = None) -> QuerySet[ToleranceContract]:
    qs = ToleranceContract.objects.all()
    return qs.filter(asset_id=asset_id) if asset_id is not None else qs


def qc_run_list() -> QuerySet[QcRun]:
    """Runs with their result and reviews in a constant number of queries."""
    return QcRun.objects.select_related("result", "contract", "scan", "cad_revision") \
        .prefetch_related(Prefetch("result__reviews",
                                   queryset=QcReview.objects.order_by("-created_at")))


def qc_run_get(*, run_id: uuid.UUID | str) -> QcRun | None:
    return qc_run_list().filter(pk=run_id).first()


def effective_decision(result: QcResult) -> str:
    """The latest review's decision, else the machine's."""
    reviews = list(result.reviews.all())
    latest = max(reviews, key=lambda r: r.created_at, default=None)
    return latest.decision if latest is not None else result.decision
