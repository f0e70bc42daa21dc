from __future__ import annotations

from django.contrib import admin

from d2r.admin_sites import tenant_site
from inspections.models import Asset, Site


@admin.register(Site, site=tenant_site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "location", "timezone", "created_at"]
    search_fields = ["name", "location"]


@admin.register(Asset, site=tenant_site)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["tag", "name", "kind", "site", "created_at"]
    list_filter = ["kind", "site"]
    list_select_related = ["site"]
    search_fields = ["tag", "name"]
    autocomplete_fields = ["site"]
    show_full_result_count = False
