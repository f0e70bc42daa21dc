"""DRF permissions by capability (accounts.roles). Fail closed: no role, no access."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from accounts.roles import Capability, role_can


def user_role(user: Any) -> str | None:
    """A person's role in the current workspace (their membership), or None."""
    membership = getattr(user, "membership", None)
    if membership is not None:
        return str(membership.role)
    return None


def request_allows(request: Request, capability: Capability) -> bool:
    """Whether the caller (credential principal or signed-in user) has `capability`."""
    principal = getattr(request, "auth", None)
    if hasattr(principal, "allows"):
        return bool(principal.allows(capability))
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    return role_can(user_role(user), capability)


def needs(read: Capability, write: Capability | None = None) -> type[BasePermission]:
    """A permission class: `read` for safe methods, `write` (default: read) otherwise."""

    class CapabilityPermission(BasePermission):
        message = "Your role does not allow this action."

        def has_permission(self, request: Request, view: Any) -> bool:
            capability = read if request.method in SAFE_METHODS else (write or read)
            return request_allows(request, capability)

    CapabilityPermission.__name__ = f"Needs_{read}_{write or read}"
    return CapabilityPermission
