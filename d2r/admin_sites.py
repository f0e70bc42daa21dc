"""Two admin sites: the platform's (operators, at the platform host) and each
workspace's (its own users, at its own host). Models register on the one whose
schema holds their table."""

from __future__ import annotations

from django.contrib import admin


class PlatformAdminSite(admin.AdminSite):
    site_header = "D2R Cloud — platform"
    site_title = "D2R platform"
    index_title = "Workspaces, plans and usage"


class TenantAdminSite(admin.AdminSite):
    site_header = "D2R Cloud"
    site_title = "D2R Cloud"
    index_title = "Inspections"

    def has_permission(self, request):  # type: ignore[no-untyped-def]
        """Anyone with a role in the workspace; each model admin checks its capability."""
        from accounts.permissions import user_role

        user = request.user
        return bool(user.is_active and user.is_authenticated and user_role(user))

    def each_context(self, request):  # type: ignore[no-untyped-def]
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = f"D2R Cloud — {tenant.name}"
        return context


platform_site = PlatformAdminSite(name="platform_admin")
tenant_site = TenantAdminSite(name="admin")


def _secure_tenant_login() -> None:
    """The workspace admin logs in through allauth (rate limits, MFA), not its own form."""
    from allauth.account.decorators import secure_admin_login

    tenant_site.login = secure_admin_login(tenant_site.login)  # type: ignore[method-assign]


_secure_tenant_login()
