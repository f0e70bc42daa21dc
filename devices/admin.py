from __future__ import annotations

from typing import Any

from django.contrib import admin, messages

from accounts.admin import CapabilityAdminMixin
from accounts.roles import Capability
from d2r.admin_sites import tenant_site
from devices import services
from devices.models import Device


@admin.register(Device, site=tenant_site)
class DeviceAdmin(CapabilityAdminMixin, admin.ModelAdmin):
    view_capability = Capability.MANAGE_DEVICES
    change_capability = Capability.MANAGE_DEVICES
    list_display = ["serial", "model", "firmware", "state", "state_changed_at"]
    list_filter = ["state", "model"]
    search_fields = ["serial", "model"]
    readonly_fields = ["uid", "state", "created_at", "state_changed_at"]
    actions = ["activate", "suspend", "decommission"]
    show_full_result_count = False

    def _move(self, request: Any, queryset: Any, to: str) -> None:
        for device in queryset:
            try:
                services.device_transition(device_id=device.pk, to=to, actor=str(request.user))
            except services.TransitionError as exc:
                messages.error(request, f"{device.serial}: {exc}")

    @admin.action(description="Activate")
    def activate(self, request: Any, queryset: Any) -> None:
        self._move(request, queryset, Device.State.ACTIVE)

    @admin.action(description="Suspend")
    def suspend(self, request: Any, queryset: Any) -> None:
        self._move(request, queryset, Device.State.SUSPENDED)

    @admin.action(description="Decommission (final)")
    def decommission(self, request: Any, queryset: Any) -> None:
        self._move(request, queryset, Device.State.DECOMMISSIONED)
