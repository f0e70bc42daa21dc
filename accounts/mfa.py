"""The workspace MFA policy, shared by the browser flow and the token endpoint."""

from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP

from accounts.models import WorkspacePolicy


def user_has_totp(user: Any) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def user_needs_mfa_setup(user: Any) -> bool:
    return WorkspacePolicy.current().mfa_required and not user_has_totp(user)


def totp_verify(user: Any, code: str) -> bool:
    """Check a TOTP code (each code is accepted once, as allauth enforces)."""
    authenticator = Authenticator.objects.filter(user=user,
                                                 type=Authenticator.Type.TOTP).first()
    return bool(authenticator and TOTP(authenticator).validate_code(code))
