"""A workspace's memberships (user → role) and machine credentials."""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models

from accounts.roles import Role


@pghistory.track()
class Membership(models.Model):
    """The role of a user in this workspace (users live in the workspace's schema).

    Invariant: one membership per user; a user without one can do nothing.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="membership")
    role = models.CharField(max_length=20, choices=[(r.value, r.value) for r in Role])
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


@pghistory.track(exclude=["last_used_at"])
class ApiKey(models.Model):
    """A secret for integrations and devices: `d2r_<schema>_<prefix>_<secret>`.

    Only the SHA-256 of the whole key is stored (keys carry 256 bits of entropy, so a
    slow hash adds nothing). The prefix is visible and unique; the key is shown once.
    Invariants: a revoked or expired key never authenticates; `role` and `scopes` can
    only narrow what the key may do, never widen it past its role.
    """

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    role = models.CharField(max_length=20, choices=[(r.value, r.value) for r in Role])
    scopes = models.JSONField(default=list, blank=True,
                              help_text="Capabilities allowed; empty means all of the role's.")
    device = models.ForeignKey("devices.Device", null=True, blank=True,
                               on_delete=models.CASCADE, related_name="api_keys")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class RefreshToken(models.Model):
    """A user's refresh token (opaque; stored as SHA-256), rotated on every use.

    Tokens of one login form a family; presenting an already-rotated token revokes the
    whole family (theft detection). Revoked tokens never refresh.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="refresh_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    family = models.UUIDField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"refresh token of {self.user_id} ({self.family})"


@pghistory.track()
class WorkspacePolicy(models.Model):
    """Security policy of the workspace (one row): e.g. MFA required for everyone."""

    mfa_required = models.BooleanField(
        default=False, help_text="Everyone must set up an authenticator app before using "
        "the workspace; password-only token logins are refused.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "security policy"
        verbose_name_plural = "security policy"

    def __str__(self) -> str:
        return "Security policy"

    @classmethod
    def current(cls) -> WorkspacePolicy:
        policy, _ = cls.objects.get_or_create(pk=1)
        return policy


SSO_ROLES = [(r.value, r.value) for r in Role if r is not Role.OWNER]


class SsoConfiguration(models.Model):
    """The workspace's enterprise single sign-on: one SAML IdP and/or one OIDC provider.

    At most one row (pk 1, enforced by a check constraint); written only through
    `accounts.sso.services.sso_configuration_save`. Invariants: an enabled protocol has
    its provider fully configured; at least one of assertion or response signatures is
    required; role maps never grant `owner` (owners are made locally); `sso_required`
    needs an enabled protocol and a break-glass owner. The OIDC client secret is stored
    only encrypted (AES-GCM bound to the schema) and is never shown back.
    """

    # SAML 2.0 (djangosaml2 / pysaml2)
    saml_enabled = models.BooleanField("SAML enabled", default=False)
    saml_idp_entity_id = models.CharField(
        "IdP entity ID", max_length=512, blank=True,
        help_text="Only responses issued by this entity are accepted.")
    saml_idp_metadata_url = models.URLField(
        "IdP metadata URL", max_length=1024, blank=True,
        help_text="Fetched when saved (HTTPS); the fetched copy is what is trusted.")
    saml_idp_metadata_xml = models.TextField(
        "IdP metadata XML", blank=True,
        help_text="The IdP's metadata: its signing certificate and SSO endpoints.")
    saml_metadata_fetched_at = models.DateTimeField(null=True, blank=True, editable=False)
    saml_want_assertions_signed = models.BooleanField(
        "require signed assertions", default=True)
    saml_want_response_signed = models.BooleanField("require signed responses", default=False)
    saml_allow_idp_initiated = models.BooleanField(
        "allow IdP-initiated login", default=False,
        help_text="Accept responses no login here asked for (IdP dashboards). Replays are "
        "still refused.")
    saml_email_attribute = models.CharField(max_length=200, default="mail", blank=True,
                                            help_text="Empty: the NameID.")
    saml_role_attribute = models.CharField(max_length=200, default="groups", blank=True)
    saml_role_map = models.JSONField(
        "SAML attribute → role", default=list, blank=True,
        help_text='Ordered; the first match wins: [["d2r-admins", "admin"], ["qc", '
        '"qc_manager"]].')
    # OpenID Connect (mozilla-django-oidc)
    oidc_enabled = models.BooleanField("OIDC enabled", default=False)
    oidc_issuer = models.URLField(
        "OIDC issuer", max_length=512, blank=True,
        help_text="Discovery at <issuer>/.well-known/openid-configuration; the document "
        "must name this exact issuer.")
    oidc_client_id = models.CharField("client ID", max_length=255, blank=True)
    oidc_client_secret_encrypted = models.TextField(blank=True, editable=False)
    oidc_scopes = models.CharField("scopes", max_length=255, default="openid email profile")
    oidc_role_claim = models.CharField("role claim", max_length=200, default="groups",
                                       blank=True)
    oidc_role_map = models.JSONField(
        "OIDC claim → role", default=list, blank=True,
        help_text='Ordered; the first match wins: [["d2r-admins", "admin"]].')
    oidc_use_pkce = models.BooleanField("use PKCE (S256)", default=True)
    # Both
    default_role = models.CharField(
        max_length=20, choices=SSO_ROLES, blank=True,
        help_text="Role of people no mapping matches; empty: they are refused.")
    sso_required = models.BooleanField(
        "SSO required", default=False,
        help_text="Refuse password logins (browser and API) except the break-glass owner.")
    break_glass_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
        help_text="An owner who may still log in with a password when SSO is required.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "single sign-on"
        verbose_name_plural = "single sign-on"
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="sso_configuration_single_row"),
            models.CheckConstraint(
                condition=models.Q(saml_want_assertions_signed=True)
                | models.Q(saml_want_response_signed=True),
                name="sso_saml_signature_required"),
        ]

    def __str__(self) -> str:
        return "Single sign-on"

    def clean(self) -> None:
        from accounts.sso.validation import sso_configuration_errors

        errors = sso_configuration_errors(self)
        if errors:
            from django.core.exceptions import ValidationError

            raise ValidationError(errors)


class SsoIdentity(models.Model):
    """A person's account at the workspace's identity provider, linked to their user.

    Looked up by (protocol, issuer, subject) before anything else, so a changed e-mail
    address at the IdP still finds the same user. Unique per provider account.
    """

    class Protocol(models.TextChoices):
        SAML = "saml"
        OIDC = "oidc"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="sso_identities")
    protocol = models.CharField(max_length=4, choices=Protocol.choices)
    issuer = models.CharField(max_length=512)
    subject = models.CharField(max_length=512)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "SSO identities"
        constraints = [models.UniqueConstraint(fields=["protocol", "issuer", "subject"],
                                               name="sso_identity_unique")]

    def __str__(self) -> str:
        return f"{self.protocol}:{self.subject}"
