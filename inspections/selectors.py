"""Reads of sites, assets, scans and uploads (the workspace is the connection's schema)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from inspections.models import Asset, Scan, Site, Upload


def site_list() -> QuerySet[Site]:
    return Site.objects.all()


def asset_list() -> QuerySet[Asset]:
    return Asset.objects.select_related("site")


def scan_list() -> QuerySet[Scan]:
    return Scan.objects.all()


def upload_get(*, upload_id: uuid.UUID) -> Upload | None:
    """The upload in this workspace, or None (another workspace's id is simply absent)."""
    return Upload.objects.select_related("scan").filter(pk=upload_id).first()
