"""Admin by role: the tenant admin shows each person only what their role may see."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from accounts import services
from accounts.models import ApiKey, Membership, WorkspacePolicy
from accounts.permissions import user_role
from accounts.roles import Capability, role_can
from d2r.admin_sites import tenant_site


class CapabilityAdminMixin:
    """ModelAdmin permissions from the role matrix instead of per-user Django perms.

    `view_capability` lets a role see the model; `change_capability` lets it add,
    change and delete. Superusers without a membership get nothing: roles decide.
    """

    view_capability: Capability = Capability.MANAGE_WORKSPACE
    change_capability: Capability = Capability.MANAGE_WORKSPACE

    def _can(self, request: Any, capability: Capability) -> bool:
        return role_can(user_role(request.user), capability)

    def has_module_permission(self, request: Any) -> bool:
        return self._can(request, self.view_capability)

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return self._can(request, self.view_capability) or self._can(
            request, self.change_capability)

    def has_add_permission(self, request: Any) -> bool:
        return self._can(request, self.change_capability)

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return self._can(request, self.change_capability)

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return self._can(request, self.change_capability)


@admin.register(Membership, site=tenant_site)
class MembershipAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    list_display = ["user", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__email"]
    autocomplete_fields = ["user"]


@admin.register(ApiKey, site=tenant_site)
class ApiKeyAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    """Keys are created through the API or `create_api_key` (shown once); revoked here."""

    list_display = ["name", "prefix", "role", "device", "created_at", "last_used_at",
                    "expires_at", "revoked_at"]
    list_filter = ["role"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["name", "prefix", "role", "scopes", "device", "created_by",
                       "created_at", "expires_at", "last_used_at", "revoked_at"]
    exclude = ["key_hash"]
    actions = ["revoke"]
    show_full_result_count = False

    def has_add_permission(self, request: Any) -> bool:
        return False

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: Any, queryset: Any) -> None:
        for key in queryset:
            services.api_key_revoke(api_key_id=key.pk, actor=str(request.user))


@admin.register(WorkspacePolicy, site=tenant_site)
class WorkspacePolicyAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "mfa_required", "updated_at"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: Any) -> Any:
        WorkspacePolicy.current()
        return super().get_queryset(request)


# Single sign-on (accounts.sso): registered on the tenant site by importing it.
from accounts.sso import admin as _sso_admin  # noqa: E402, F401
