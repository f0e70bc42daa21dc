"""Local accounts (django-allauth): email login, throttled failures, TOTP MFA policy."""

from __future__ import annotations

import pytest
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.core.cache import cache
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import WorkspacePolicy
from tests.conftest import TenantUser, make_user

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-test-password"


def _email_user(name: str, role: str = "qc_manager") -> TenantUser:
    user = make_user("alpha", role=role, name=name)
    with schema_context("alpha"):
        user.user.email = user.user.username  # type: ignore[attr-defined]
        user.user.save()  # type: ignore[attr-defined]
    return user


def _current_code(secret: str) -> str:
    counter = next(iter(yield_hotp_counters_from_time()))
    return format_hotp_value(hotp_value(secret, counter))


def test_email_login_in_the_browser() -> None:
    user = _email_user("browser")
    client = Client(HTTP_HOST="alpha.localhost")
    response = client.post("/accounts/login/", {"login": user.user.username,  # type: ignore[attr-defined]
                                                "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_failed_logins_are_throttled() -> None:
    cache.clear()
    user = _email_user("victim")
    client = Client(HTTP_HOST="alpha.localhost")
    for _ in range(5):
        bad = client.post("/accounts/login/", {"login": user.user.username,  # type: ignore[attr-defined]
                                               "password": "wrong-password"})
        assert bad.status_code == 200 and b"not correct" in bad.content
    blocked = client.post("/accounts/login/", {"login": user.user.username,  # type: ignore[attr-defined]
                                               "password": PASSWORD})
    assert blocked.status_code in (200, 429)
    assert b"Too many failed login attempts" in blocked.content
    assert "_auth_user_id" not in client.session


def test_policy_requires_mfa_setup_before_anything_else() -> None:
    user = _email_user("newbie")
    with schema_context("alpha"):
        WorkspacePolicy.objects.update_or_create(pk=1, defaults={"mfa_required": True})
    response = user.client.get("/admin/")
    assert response.status_code == 302 and "/accounts/2fa/totp/activate" in response["Location"]
    token = Client(HTTP_HOST="alpha.localhost").post(
        "/api/v1/auth/token", {"username": user.user.username, "password": PASSWORD},  # type: ignore[attr-defined]
        content_type="application/json")
    assert token.status_code == 403 and "requires MFA" in token.json()["detail"]


def test_totp_user_must_send_a_valid_code_for_a_token() -> None:
    user = _email_user("mfa-user")
    secret = generate_totp_secret()
    with schema_context("alpha"):
        TOTP.activate(user.user, secret)  # type: ignore[arg-type]
    client = Client(HTTP_HOST="alpha.localhost")
    body = {"username": user.user.username, "password": PASSWORD}  # type: ignore[attr-defined]
    missing = client.post("/api/v1/auth/token", body, content_type="application/json")
    assert missing.status_code == 401 and "otp" in missing.json()["detail"]
    wrong = client.post("/api/v1/auth/token", body | {"otp": "000000"},
                        content_type="application/json")
    assert wrong.status_code == 401
    good = client.post("/api/v1/auth/token", body | {"otp": _current_code(secret)},
                       content_type="application/json")
    assert good.status_code == 200 and good.json()["access"]


def test_totp_user_logging_in_in_the_browser_is_asked_for_the_code() -> None:
    user = _email_user("mfa-browser")
    with schema_context("alpha"):
        TOTP.activate(user.user, generate_totp_secret())  # type: ignore[arg-type]
    client = Client(HTTP_HOST="alpha.localhost")
    response = client.post("/accounts/login/", {"login": user.user.username,  # type: ignore[attr-defined]
                                                "password": PASSWORD})
    assert response.status_code == 302 and "/accounts/2fa/authenticate" in response["Location"]
    assert client.get("/admin/").status_code == 302  # not logged in until the code


def test_no_public_signup() -> None:
    response = Client(HTTP_HOST="alpha.localhost").post(
        "/accounts/signup/", {"email": "x@evil.test", "password1": PASSWORD,
                              "password2": PASSWORD})
    assert b"Sign Up Closed" in response.content
