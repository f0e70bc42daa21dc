"""Authentication events: logged as JSON and appended to the workspace's audit log."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection

logger = logging.getLogger("d2r.auth")


def auth_event(kind: str, *, actor: str, subject_id: Any = None, **data: Any) -> None:
    """Record one authentication event (login, failure, token, key, SSO, device refusal).

    Call it inside the service's transaction, so the event and the change commit
    together. In the public schema (platform logins) only the log line is written.
    """
    logger.info("auth event", extra={"event": kind, "actor": actor, "subject_id": subject_id,
                                     **data})
    if connection.schema_name in (None, "public"):
        return
    try:
        from audit import services as audit_services
    except ImportError:  # the audit app not installed
        return
    append = getattr(audit_services, "audit_append", None)
    if append is not None:
        append(action=f"auth.{kind}", actor=actor, object_type="auth",
               object_id=str(subject_id or ""), payload=data)
