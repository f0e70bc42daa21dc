from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import transaction

from accounts.admin import CapabilityAdminMixin
from d2r.admin_sites import platform_site, tenant_site
from tenants import services, tasks
from tenants.models import Domain, Plan, Tenant


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 1


@admin.register(Tenant, site=platform_site)
class TenantAdmin(admin.ModelAdmin):
    """Operators create workspaces here; the schema is provisioned in the background."""

    list_display = ["name", "schema_name", "plan", "status", "created_at"]
    list_filter = ["status", "plan"]
    search_fields = ["name", "schema_name", "domains__domain"]
    readonly_fields = ["status", "status_detail", "created_at"]
    inlines = [DomainInline]
    actions = ["suspend", "reactivate", "retry_provisioning"]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "schema_name"] if obj else fields

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        super().save_model(request, obj, form, change)
        if not change:
            transaction.on_commit(lambda: tasks.tenant_provision_task.delay(obj.pk))
            messages.info(request, f"Provisioning {obj.schema_name} in the background.")

    @admin.action(description="Suspend the selected workspaces")
    def suspend(self, request, queryset):  # type: ignore[no-untyped-def]
        for tenant in queryset:
            services.tenant_set_status(tenant_id=tenant.pk, status=Tenant.Status.SUSPENDED)

    @admin.action(description="Reactivate the selected workspaces")
    def reactivate(self, request, queryset):  # type: ignore[no-untyped-def]
        for tenant in queryset.filter(status=Tenant.Status.SUSPENDED):
            services.tenant_set_status(tenant_id=tenant.pk, status=Tenant.Status.ACTIVE)

    @admin.action(description="Retry provisioning")
    def retry_provisioning(self, request, queryset):  # type: ignore[no-untyped-def]
        for tenant in queryset.exclude(status=Tenant.Status.ACTIVE):
            tasks.tenant_provision_task.delay(tenant.pk)


@admin.register(Plan, site=platform_site)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "max_devices", "max_storage_gb",
                    "api_requests_per_minute", "price_inr_per_device_year"]


# Users and groups exist in each schema: the platform's operators in `public`, each
# workspace's own people in its schema (managed there by owners and admins).
platform_site.register(User, UserAdmin)
platform_site.register(Group, GroupAdmin)


@admin.register(User, site=tenant_site)
class TenantUserAdmin(CapabilityAdminMixin, UserAdmin):
    pass


@admin.register(Group, site=tenant_site)
class TenantGroupAdmin(CapabilityAdminMixin, GroupAdmin):
    pass
