"""Reads for SSO: the workspace's configuration, its login policy, role mapping."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from accounts.models import SsoConfiguration
from accounts.roles import Role


def sso_configuration_get() -> SsoConfiguration | None:
    """This workspace's SSO configuration, or None when SSO was never set up."""
    return SsoConfiguration.objects.filter(pk=1).first()


@dataclass(frozen=True)
class SsoPolicy:
    saml_enabled: bool = False
    oidc_enabled: bool = False
    sso_required: bool = False
    break_glass_user_id: int | None = None

    def password_login_allowed(self, user: Any) -> bool:
        """Whether `user` may log in with a password (any local login path)."""
        return not self.sso_required or (
            self.break_glass_user_id is not None and user.pk == self.break_glass_user_id)


def sso_policy_get() -> SsoPolicy:
    """The login policy of the current workspace (one primary-key query, not cached:
    a cached policy could outlive a change by its TTL, and tests roll rows back)."""
    row = (SsoConfiguration.objects.filter(pk=1)
           .values("saml_enabled", "oidc_enabled", "sso_required", "break_glass_user_id")
           .first())
    return SsoPolicy(**row) if row else SsoPolicy()


def sso_role_resolve(role_map: list[list[str]], values: Iterable[str],
                     default_role: str) -> Role | None:
    """The role for a person whose IdP groups/roles are `values`.

    The map is ordered and the first pair whose value the person holds wins, so admins
    list the most privileged groups first. No match: `default_role`, or None (refused).
    Owner is never returned: SSO does not make owners.
    """
    held = {str(v) for v in values}
    for value, role in role_map:
        if value in held and role != Role.OWNER:
            return Role(role)
    return Role(default_role) if default_role and default_role != Role.OWNER else None
