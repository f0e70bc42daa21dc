"""The workspace admin's SSO page: one configuration, edited by MANAGE_WORKSPACE roles."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin import CapabilityAdminMixin
from accounts.models import SsoConfiguration, SsoIdentity
from accounts.roles import Role
from accounts.sso import services
from accounts.sso.config import sp_entity_id
from d2r.admin_sites import tenant_site

MAX_UPLOAD_BYTES = services.MAX_METADATA_BYTES


class SsoConfigurationForm(forms.ModelForm):  # type: ignore[type-arg]
    saml_idp_metadata_url = forms.URLField(
        label="IdP metadata URL", required=False, max_length=1024, assume_scheme="https",
        help_text="Fetched when saved (HTTPS); the fetched copy is what is trusted.")
    oidc_issuer = forms.URLField(
        label="OIDC issuer", required=False, max_length=512, assume_scheme="https",
        help_text="Discovery at <issuer>/.well-known/openid-configuration; the document "
                  "must name this exact issuer.")
    saml_idp_metadata_file = forms.FileField(
        label="Upload IdP metadata", required=False,
        help_text="An XML file from your identity provider; replaces the XML below.")
    oidc_client_secret = forms.CharField(
        label="Client secret", required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: stored encrypted and never shown again. Leave empty to keep "
                  "the stored secret.")

    class Meta:
        model = SsoConfiguration
        # Listed, not "__all__": the encrypted secret must never become a form field.
        fields = [
            "sso_required", "break_glass_user", "default_role", "saml_enabled",
            "saml_idp_entity_id", "saml_idp_metadata_url", "saml_idp_metadata_xml",
            "saml_want_assertions_signed", "saml_want_response_signed",
            "saml_allow_idp_initiated", "saml_email_attribute", "saml_role_attribute",
            "saml_role_map", "oidc_enabled", "oidc_issuer", "oidc_client_id", "oidc_scopes",
            "oidc_use_pkce", "oidc_role_claim", "oidc_role_map",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "break_glass_user" in self.fields:
            self.fields["break_glass_user"].queryset = get_user_model().objects.filter(
                membership__role=Role.OWNER)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        upload = cleaned.get("saml_idp_metadata_file")
        if upload:
            if upload.size > MAX_UPLOAD_BYTES:
                raise ValidationError({"saml_idp_metadata_file": "Larger than 2 MB."})
            cleaned["saml_idp_metadata_xml"] = upload.read().decode("utf-8", errors="replace")
        elif cleaned.get("saml_idp_metadata_url"):
            try:
                cleaned["saml_idp_metadata_xml"] = services.saml_metadata_fetch(
                    url=cleaned["saml_idp_metadata_url"])
            except ValidationError as exc:
                raise ValidationError({"saml_idp_metadata_url": exc.messages}) from exc
            self.instance.saml_metadata_fetched_at = timezone.now()
        return cleaned


@admin.register(SsoConfiguration, site=tenant_site)
class SsoConfigurationAdmin(CapabilityAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    form = SsoConfigurationForm
    readonly_fields = ["service_provider", "oidc_redirect_uri", "client_secret_status",
                       "saml_metadata_fetched_at", "updated_at"]
    fieldsets = [
        ("Policy", {"fields": ["sso_required", "break_glass_user", "default_role"]}),
        ("SAML 2.0", {"fields": [
            "saml_enabled", "service_provider", "saml_idp_entity_id", "saml_idp_metadata_url",
            "saml_idp_metadata_file", "saml_idp_metadata_xml", "saml_metadata_fetched_at",
            "saml_want_assertions_signed", "saml_want_response_signed",
            "saml_allow_idp_initiated", "saml_email_attribute", "saml_role_attribute",
            "saml_role_map"]}),
        ("OpenID Connect", {"fields": [
            "oidc_enabled", "oidc_redirect_uri", "oidc_issuer", "oidc_client_id",
            "oidc_client_secret", "client_secret_status", "oidc_scopes", "oidc_use_pkce",
            "oidc_role_claim", "oidc_role_map"]}),
        (None, {"fields": ["updated_at"]}),
    ]

    @staticmethod
    def _host() -> str:
        return str(getattr(connection.tenant, "domain_url", "") or "")

    @admin.display(description="This workspace as SAML service provider")
    def service_provider(self, obj: SsoConfiguration | None) -> str:
        host = self._host()
        return format_html(
            "Entity ID: <code>{}</code><br>ACS (HTTP-POST): <code>https://{}/saml2/acs/</code>"
            "<br>Metadata: <code>https://{}/saml2/metadata/</code>",
            sp_entity_id(host), host, host)

    @admin.display(description="Redirect URI to register at the OP")
    def oidc_redirect_uri(self, obj: SsoConfiguration | None) -> str:
        return format_html("<code>https://{}/oidc/callback/</code>", self._host())

    @admin.display(description="Stored client secret")
    def client_secret_status(self, obj: SsoConfiguration | None) -> str:
        return "set (encrypted)" if obj and obj.oidc_client_secret_encrypted else "none"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not SsoConfiguration.objects.exists()

    def changelist_view(self, request: HttpRequest,
                        extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """A single page: straight to the configuration (or to creating it)."""
        name = f"{self.admin_site.name}:accounts_ssoconfiguration"
        if SsoConfiguration.objects.filter(pk=1).exists():
            return HttpResponseRedirect(reverse(f"{name}_change", args=[1]))
        if self.has_add_permission(request):
            return HttpResponseRedirect(reverse(f"{name}_add"))
        return super().changelist_view(request, extra_context)

    def save_model(self, request: HttpRequest, obj: SsoConfiguration, form: Any,
                   change: bool) -> None:
        services.sso_configuration_save(configuration=obj,
                                        client_secret=form.cleaned_data.get("oidc_client_secret"),
                                        actor=str(request.user))

    def delete_model(self, request: HttpRequest, obj: SsoConfiguration) -> None:
        services.sso_configuration_delete(actor=str(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        services.sso_configuration_delete(actor=str(request.user))


@admin.register(SsoIdentity, site=tenant_site)
class SsoIdentityAdmin(CapabilityAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Who signed in through which IdP account (read-only: rows follow logins)."""

    list_display = ["user", "protocol", "issuer", "subject", "created_at", "last_login_at"]
    list_filter = ["protocol"]
    list_select_related = ["user"]
    search_fields = ["subject", "user__username", "user__email"]
    readonly_fields = list_display
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
