from __future__ import annotations

from django.db import connection


def test_runs_as_authenticator(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_user, current_user")
        session_user, current_user = cursor.fetchone()
    assert session_user == connection.app_user()
    assert current_user.endswith("_platform")
