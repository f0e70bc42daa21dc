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
