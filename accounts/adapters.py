"""django-allauth in a workspace: no public sign-up, events into the audit log."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest

from accounts import events


class WorkspaceAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False  # admins invite people into their workspace

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        events.auth_event("login.failure", actor=str(credentials.get("email", "")))
        super().authentication_failed(request, **credentials)

    def login(self, request: HttpRequest, user: Any) -> None:
        super().login(request, user)
        events.auth_event("login", actor=str(user), subject_id=user.pk)
