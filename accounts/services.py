"""Writes for identity: token pairs, refresh rotation and revocation, API keys."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts import events
from accounts.credentials import CredentialError, access_token_issue, hash_secret
from accounts.models import ApiKey, RefreshToken
from accounts.permissions import user_role
from audit import tracking


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int


def _refresh_create(user: Any, family: uuid.UUID) -> str:
    raw = f"d2rr.{secrets.token_urlsafe(32)}"
    RefreshToken.objects.create(
        user=user,
        token_hash=hash_secret(raw),
        family=family,
        expires_at=timezone.now() + timedelta(days=settings.JWT_REFRESH_DAYS),
    )
    return raw


def token_pair_issue(*, user: Any) -> TokenPair:
    """A new login: access token plus the first refresh token of a new family."""
    role = user_role(user)
    if role is None:
        raise CredentialError("You have no role in this workspace.", slug="permission-denied")
    with transaction.atomic():
        refresh = _refresh_create(user, uuid.uuid4())
        events.auth_event("token.issue", actor=str(user), subject_id=user.pk)
    return TokenPair(
        access_token_issue(user=user, schema=connection.schema_name, role=role),
        refresh,
        settings.JWT_ACCESS_SECONDS,
    )


def token_refresh(*, raw: str) -> TokenPair:
    """Rotate a refresh token. Reusing a rotated token revokes its whole family.

    The revocation commits even though the request is refused: the refusal is raised
    only after the transaction that recorded it.
    """
    now = timezone.now()
    refusal: CredentialError | None = None
    with transaction.atomic():
        token = (
            RefreshToken.objects.select_for_update()
            .select_related("user")
            .filter(token_hash=hash_secret(raw))
            .first()
        )
        if token is None:
            raise CredentialError("The refresh token is not valid.")
        if token.revoked_at is not None:
            refusal = CredentialError("The refresh token has been revoked.")
        elif token.used_at is not None:
            RefreshToken.objects.filter(family=token.family, revoked_at=None).update(revoked_at=now)
            events.auth_event(
                "token.reuse_detected", actor=str(token.user), subject_id=token.user_id
            )
            refusal = CredentialError("The refresh token was already used; the session is revoked.")
        elif token.expires_at <= now:
            refusal = CredentialError("The refresh token has expired.")
        elif not token.user.is_active:
            refusal = CredentialError("The user is inactive.")
        else:
            token.used_at = now
            token.save(update_fields=["used_at"])
            refresh = _refresh_create(token.user, token.family)
            events.auth_event("token.refresh", actor=str(token.user), subject_id=token.user_id)
    if refusal is not None:
        raise refusal
    role = user_role(token.user)
    if role is None:
        raise CredentialError("You have no role in this workspace.", slug="permission-denied")
    return TokenPair(
        access_token_issue(user=token.user, schema=connection.schema_name, role=role),
        refresh,
        settings.JWT_ACCESS_SECONDS,
    )


def token_revoke(*, raw: str) -> None:
    """Log out: revoke the family of this refresh token (idempotent)."""
    with transaction.atomic():
        token = RefreshToken.objects.filter(token_hash=hash_secret(raw)).first()
        if token is None:
            return
        RefreshToken.objects.filter(family=token.family, revoked_at=None).update(
            revoked_at=timezone.now()
        )
        events.auth_event("token.revoke", actor=str(token.user), subject_id=token.user_id)


def token_revoke_all(*, user: Any) -> int:
    """Log a user out everywhere: revoke every refresh token; returns how many."""
    with transaction.atomic():
        count = RefreshToken.objects.filter(user=user, revoked_at=None).update(
            revoked_at=timezone.now()
        )
        events.auth_event("token.revoke_all", actor=str(user), subject_id=user.pk, count=count)
    return count


def api_key_revoke(*, api_key_id: int, actor: str) -> None:
    """Revoke a key; it is refused from the next request on (no cache in between).

    Idempotent: revoking a revoked key changes nothing (the event is still recorded).
    The row is saved, not bulk-updated, so its change goes into the event's payload.
    """
    with transaction.atomic(), tracking.recorded_by_caller(ApiKey) as changes:
        key = ApiKey.objects.select_for_update().filter(pk=api_key_id, revoked_at=None).first()
        if key is not None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
        events.auth_event(
            "api_key.revoke", actor=actor, subject_id=api_key_id, rows=tracking.rows(changes)
        )
