"""A workspace's memberships (user → role) and machine credentials."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.roles import Role


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
