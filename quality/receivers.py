"""Reactions to other apps' events: each calls one quality service."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from inspections.signals import scan_processed
from quality import services


@receiver(scan_processed, dispatch_uid="quality.judge_processed_scan")
def _judge_processed_scan(sender: Any, scan_id: Any, **_: Any) -> None:
    with transaction.atomic():
        services.qc_run_request_for_processed_scan(scan_id=scan_id)
