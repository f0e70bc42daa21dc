"""The `sso_required` rule for every local (password) login path: browser sessions
(SsoRequiredMiddleware) and the API token endpoint."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts import events
from accounts.sso.selectors import sso_policy_get


def password_login_refused(user: Any, *, path: str, logged_in_now: bool = True) -> bool:
    """True (and an `sso.password_refused` event) when the workspace requires SSO and
    `user` is not its break-glass owner; a break-glass login is recorded too."""
    policy = sso_policy_get()
    if policy.password_login_allowed(user):
        if logged_in_now and policy.sso_required:
            with transaction.atomic():
                events.auth_event("sso.break_glass_login", actor=str(user), subject_id=user.pk,
                                  path=path[:200])
        return False
    with transaction.atomic():
        events.auth_event("sso.password_refused", actor=str(user), subject_id=user.pk,
                          path=path[:200])
    return True
