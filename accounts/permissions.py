"""DRF permissions by capability (accounts.roles). Fail closed: no role, no access."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from accounts.roles import Capability, role_can


def request_role(request: Request) -> str | None:
    """The caller's role: from its credential (API key, device) or the user's membership."""
    auth = getattr(request, "auth", None)
    role = getattr(auth, "role", None)
    if role:
        return str(role)
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    membership = getattr(user, "membership", None)
    if membership is not None:
        return str(membership.role)
    return "owner" if getattr(user, "is_superuser", False) else None


def needs(read: Capability, write: Capability | None = None) -> type[BasePermission]:
    """A permission class: `read` for safe methods, `write` (default: read) otherwise."""

    class CapabilityPermission(BasePermission):
        message = "Your role does not allow this action."

        def has_permission(self, request: Request, view: Any) -> bool:
            capability = read if request.method in SAFE_METHODS else (write or read)
            return role_can(request_role(request), capability)

    CapabilityPermission.__name__ = f"Needs_{read}_{write or read}"
    return CapabilityPermission
