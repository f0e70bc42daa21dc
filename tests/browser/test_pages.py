"""Pages people use, in a real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import LiveServer, make_user

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent.parent / ".d2r" / "screenshots"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
# *.localhost resolves to loopback in Chromium: workspace hosts work as in production.


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Per test, and requested after the data fixtures: Playwright's sync API runs an
    event loop in this thread, where Django then refuses synchronous database calls."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def qc_manager(django_db_blocker: Any, live_asgi_server: LiveServer) -> Iterator[Any]:
    """A committed QC manager of alpha with an email login, and a site to see."""
    with django_db_blocker.unblock():
        user = make_user("alpha", role="qc_manager", name="browser-qc")
        with schema_context("alpha"):
            user.user.email = user.user.username
            user.user.save()
            from inspections.models import Site

            site = Site.objects.create(name="Browser Plant")
        yield user
        with schema_context("alpha"):
            site.delete()
            type(user.user).objects.filter(pk=user.user.pk).delete()


def _collect_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_qc_manager_logs_in_and_sees_sites_not_devices(
    live_asgi_server: LiveServer, qc_manager: Any, browser: Browser
) -> None:
    page = browser.new_page()
    errors = _collect_errors(page)
    page.goto(live_asgi_server.url("alpha.localhost", "/admin/"))
    assert "/accounts/login/" in page.url  # the admin logs in through allauth
    page.fill("input[name=login]", qc_manager.user.username)
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.goto(live_asgi_server.url("alpha.localhost", "/admin/"))
    assert "D2R Cloud — Alpha" in page.content()
    assert page.locator("a[href='/admin/inspections/site/']").count() >= 1
    assert page.locator("a[href='/admin/devices/device/']").count() == 0
    page.goto(live_asgi_server.url("alpha.localhost", "/admin/inspections/site/"))
    assert page.locator("text=Browser Plant").count() == 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "admin-sites.png"), full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_api_docs_render_under_the_content_security_policy(
    live_asgi_server: LiveServer, browser: Browser
) -> None:
    page = browser.new_page()
    errors = _collect_errors(page)
    page.goto(live_asgi_server.url("alpha.localhost", "/api/v1/docs/"))
    page.wait_for_selector(".swagger-ui .info", timeout=15000)
    assert "D2R Cloud API" in page.inner_text(".swagger-ui .info")
    assert page.locator(".opblock-summary-path[data-path='/api/v1/sites']").count() >= 1
    page.screenshot(path=str(SHOTS / "api-docs.png"))
    assert not [e for e in errors if "Content Security Policy" in e], errors
