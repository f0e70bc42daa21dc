from __future__ import annotations

from django.contrib import admin

from billing.models import UsageRecord
from d2r.admin_sites import platform_site


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
