"""Read-only admin of the audit log for roles with ``view_audit``: nothing here writes."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from accounts.permissions import user_role
from accounts.roles import Capability, role_can
from audit.models import Entry, ExportJob, Receipt, TreeHead
from d2r.admin_sites import tenant_site


class AuditReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Visible with ``view_audit``; no add, change or delete for anyone (append-only)."""

    show_full_result_count = False  # no COUNT(*) over a large log

    def has_module_permission(self, request: Any) -> bool:
        return role_can(user_role(request.user), Capability.VIEW_AUDIT)

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Entry, site=tenant_site)
class EntryAdmin(AuditReadOnlyAdmin):
    list_display = ["seq", "time", "actor", "action", "object_type", "object_id"]
    list_filter = ["action"]
    search_fields = ["=object_id", "actor"]
    ordering = ["-seq"]


@admin.register(TreeHead, site=tenant_site)
class TreeHeadAdmin(AuditReadOnlyAdmin):
    list_display = ["size", "root_hash", "key_id", "created_at"]


@admin.register(Receipt, site=tenant_site)
class ReceiptAdmin(AuditReadOnlyAdmin):
    list_display = ["id", "subject_type", "subject_id", "outcome", "algorithm_version",
                    "created_at"]
    list_select_related = ["entry"]
    list_filter = ["outcome"]


@admin.register(ExportJob, site=tenant_site)
class ExportJobAdmin(AuditReadOnlyAdmin):
    list_display = ["id", "kind", "status", "progress", "requested_by", "created_at",
                    "finished_at", "pades_level", "archival_expires_at"]
    list_filter = ["kind", "status"]
