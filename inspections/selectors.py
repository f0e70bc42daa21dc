"""Reads of sites and assets (the workspace is the connection's schema)."""

from __future__ import annotations

from django.db.models import QuerySet

from inspections.models import Asset, Site


def site_list() -> QuerySet[Site]:
    return Site.objects.all()


def asset_list() -> QuerySet[Asset]:
    return Asset.objects.select_related("site")
