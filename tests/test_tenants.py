"""Workspace creation, provisioning, migrations and the platform admin."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from d2r.db.privileged import privileged
from tenants import dbroles, services
from tenants.migration import pending_schemas
from tenants.models import Domain, Tenant
from tests.conftest import make_user


def _drop(slug: str) -> None:
    with privileged():
        Domain.objects.filter(tenant__schema_name=slug).delete()
        Tenant.objects.filter(schema_name=slug).delete()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{slug}" CASCADE')
        dbroles.tenant_role_drop(slug)


@pytest.fixture
def autocommit_db(django_db_setup: None, django_db_blocker: object) -> Iterator[None]:
    """Schema creation cannot run inside the test transaction; clean up by hand."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        yield
        _drop("gamma")


def test_create_tenant_command_provisions_schema_role_and_admin(autocommit_db: None) -> None:
    out = io.StringIO()
    with privileged():
        call_command("create_tenant", "gamma", name="Gamma Steel", domain="Gamma.localhost",
                     admin_email="qc@gamma.test", stdout=out)
    text = out.getvalue()
    assert "Workspace gamma is active." in text
    password = text.split("password: ")[1].split()[0]
    assert len(password) >= 12
    tenant = Tenant.objects.get(schema_name="gamma")
    assert tenant.status == Tenant.Status.ACTIVE
    assert tenant.domains.get().domain == "gamma.localhost"
    client = Client(HTTP_HOST="gamma.localhost")
    with schema_context("gamma"):  # the admin exists in gamma's schema only
        assert client.login(username="qc@gamma.test", password=password)
    assert client.get("/admin/").status_code == 200
    # gamma's admin exists nowhere else: not on the platform, not in alpha.
    platform = Client(HTTP_HOST="localhost").post(
        "/admin/login/", {"username": "qc@gamma.test", "password": password})
    assert platform.status_code == 200 and b"correct username and password" in platform.content
    alpha = Client(HTTP_HOST="alpha.localhost").post(
        "/accounts/login/", {"login": "qc@gamma.test", "password": password})
    assert alpha.status_code == 200 and b"not correct" in alpha.content
    with schema_context("gamma"), connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0].endswith("_t_gamma")


def test_create_tenant_refuses_bad_slug_and_taken_domain(autocommit_db: None) -> None:
    with privileged():
        with pytest.raises(CommandError, match="lowercase"):
            call_command("create_tenant", "Bad-Slug", name="x", domain="x.localhost",
                         admin_email="a@b.c", stdout=io.StringIO())
        with pytest.raises(CommandError, match="already in use"):
            call_command("create_tenant", "gamma", name="x", domain="alpha.localhost",
                         admin_email="a@b.c", stdout=io.StringIO())
    assert not Tenant.objects.filter(schema_name="gamma").exists()


def test_provisioning_is_idempotent_and_rerun_after_a_crash(autocommit_db: None) -> None:
    tenant = services.tenant_request(slug="gamma", name="Gamma", domain="gamma.localhost")
    with privileged():
        # A crash after CREATE SCHEMA, before migrations: the job is simply run again.
        with connection.cursor() as cursor:
            cursor.execute('CREATE SCHEMA "gamma"')
        services.tenant_provision(tenant_id=tenant.pk)
        services.tenant_provision(tenant_id=tenant.pk)
    assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.ACTIVE
    with privileged():
        assert pending_schemas(["gamma", "alpha", "beta"]) == []
    with schema_context("gamma"):
        from inspections.models import Site

        assert Site.objects.count() == 0


@pytest.mark.django_db
def test_platform_admin_creates_a_workspace_for_background_provisioning() -> None:
    from django.contrib.auth import get_user_model

    operator = get_user_model().objects.create_superuser("ops@d2r.test", "ops@d2r.test", "pw")
    client = Client(HTTP_HOST="localhost")
    client.force_login(operator)
    page = client.get("/admin/tenants/tenant/")
    assert page.status_code == 200 and b"Alpha" in page.content
    # The platform host serves only the platform admin: no tenant data there.
    assert client.get("/admin/inspections/site/").status_code == 404


@pytest.mark.django_db
def test_tenant_admin_shows_only_its_own_workspace() -> None:
    admin = make_user("alpha", superuser=True, name="admin")
    page = admin.client.get("/admin/")
    assert page.status_code == 200
    assert b"Alpha" in page.content and b"Sites" in page.content
    assert admin.client.get("/admin/tenants/tenant/").status_code == 404
