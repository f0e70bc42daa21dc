from __future__ import annotations

from django.contrib import admin

from accounts.admin import CapabilityAdminMixin
from accounts.roles import Capability
from billing.models import UsageRecord
from d2r.admin_sites import platform_site, tenant_site


@admin.register(UsageRecord, site=platform_site)
class UsageRecordAdmin(admin.ModelAdmin):
    """Finance's view of metered usage across workspaces (read-only)."""

    list_display = ["occurred_at", "tenant_schema", "meter", "quantity"]
    list_filter = ["meter", "tenant_schema"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(UsageRecord, site=tenant_site)
class WorkspaceUsageAdmin(CapabilityAdminMixin, UsageRecordAdmin):
    """Finance's view inside a workspace: its own rows only (row-level security)."""

    view_capability = Capability.VIEW_USAGE
    change_capability = Capability.VIEW_USAGE
    list_filter = ["meter"]
    list_display = ["occurred_at", "meter", "quantity"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
