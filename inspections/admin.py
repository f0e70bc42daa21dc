from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import CapabilityAdminMixin
from accounts.roles import Capability
from d2r.admin_sites import tenant_site
from inspections.models import Asset, Scan, Site, Upload


@admin.register(Site, site=tenant_site)
class SiteAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    view_capability = Capability.VIEW_INSPECTIONS
    change_capability = Capability.MANAGE_ASSETS
    list_display = ["name", "location", "timezone", "created_at"]
    search_fields = ["name", "location"]


@admin.register(Asset, site=tenant_site)
class AssetAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    view_capability = Capability.VIEW_INSPECTIONS
    change_capability = Capability.MANAGE_ASSETS
    list_display = ["tag", "name", "kind", "site", "created_at"]
    list_filter = ["kind", "site"]
    list_select_related = ["site"]
    search_fields = ["tag", "name"]
    autocomplete_fields = ["site"]
    show_full_result_count = False


@admin.register(Scan, site=tenant_site)
class ScanAdmin(admin.ModelAdmin):
    """Scans and their state (received, processing, processed or rejected with reason)."""

    list_display = ["id", "asset", "status", "rejection_reason", "point_count", "size_bytes",
                    "device", "received_at", "processed_at"]
    list_filter = ["status", "rejection_reason", "encoding"]
    list_select_related = ["asset"]
    search_fields = ["sha256", "device", "operator"]
    autocomplete_fields = ["asset"]
    show_full_result_count = False
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in Scan._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Upload, site=tenant_site)
class UploadAdmin(admin.ModelAdmin):
    """Resumable uploads in flight and finished (read-only: devices drive them)."""

    list_display = ["id", "asset", "status", "offset", "declared_size", "deduplicated",
                    "failure_reason", "device", "created_at"]
    list_filter = ["status", "deduplicated", "encoding"]
    list_select_related = ["asset"]
    search_fields = ["declared_sha256", "device", "filename", "idempotency_key"]
    show_full_result_count = False
    readonly_fields = [f.name for f in Upload._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
