"""CAD revisions in the workspace admin (read-only: revisions are uploaded via the API)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from accounts.admin import CapabilityAdminMixin
from accounts.roles import Capability
from d2r.admin_sites import tenant_site
from twins.models import CadRevision


@admin.register(CadRevision, site=tenant_site)
class CadRevisionAdmin(CapabilityAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    view_capability = Capability.VIEW_INSPECTIONS
    change_capability = Capability.MANAGE_ASSETS
    list_display = ["asset", "number", "label", "filename", "units", "triangle_count",
                    "region_count", "watertight", "created_at"]
    list_filter = ["asset", "watertight"]
    list_select_related = ["asset"]
    show_full_result_count = False

    def get_readonly_fields(self, request: Any, obj: Any = None) -> list[str]:
        return [f.name for f in CadRevision._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
