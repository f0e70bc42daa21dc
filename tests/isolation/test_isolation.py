"""The isolation suite: workspace alpha must never reach workspace beta's data."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import ProgrammingError, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import selectors as billing_selectors
from billing import services as billing_services
from d2r.db import roles
from tests.conftest import TenantUser, make_user
from tests.isolation.registry import DERIVED, PLATFORM, SHARED_RLS, TENANT

pytestmark = pytest.mark.django_db


def _label(model: type) -> str:
    return f"{model._meta.app_label}.{model.__name__}"


def _live_role_and_path() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_setting('search_path')")
        return cursor.fetchone()


def test_every_model_is_covered() -> None:
    """A new model must be classified in the registry, or this fails."""
    tenant_labels = {apps.get_app_config(a.rsplit(".", 1)[-1]).label for a in settings.TENANT_APPS}
    shared_labels = {apps.get_app_config(a.rsplit(".", 1)[-1]).label for a in settings.SHARED_APPS}
    missing = []
    for model in apps.get_models():
        label = _label(model)
        app = model._meta.app_label
        if app in tenant_labels and label not in TENANT and label not in DERIVED:
            missing.append(f"{label} (tenant)")
        if app in shared_labels and app not in tenant_labels and label not in (
            SHARED_RLS | PLATFORM
        ):
            missing.append(f"{label} (shared)")
    assert missing == [], f"Models without isolation coverage: {missing}"


@pytest.mark.parametrize("label", sorted(TENANT))
def test_tenant_rows_invisible_and_unreachable_from_another_tenant(label: str) -> None:
    model = apps.get_model(label)
    with schema_context("beta"):
        row = TENANT[label].factory()
    with schema_context("alpha"):
        assert not model.objects.filter(pk=row.pk, **_same_fields(model, row)).exists()
        table = model._meta.db_table
        with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f'SELECT * FROM beta."{table}"')
        with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f'DELETE FROM beta."{table}"')


def _same_fields(model: type, row: object) -> dict[str, object]:
    """Match beta's row on a distinctive field too, since ids collide across schemas."""
    for field in ("name", "username", "session_key", "codename", "model", "object_repr",
                  "serial", "token_hash", "email", "key", "pgh_id"):
        if any(f.name == field for f in model._meta.fields):
            return {field: getattr(row, field)}
    return {}


@pytest.mark.parametrize("label", sorted(k for k, v in TENANT.items() if v.api_path))
def test_api_answers_404_for_another_tenants_ids(label: str, alpha_admin: TenantUser) -> None:
    case = TENANT[label]
    with schema_context("beta"):
        row = case.factory()
    with schema_context("alpha"):  # make sure alpha has no row with the same id
        apps.get_model(label).objects.filter(pk=row.pk).delete()
    listing = alpha_admin.client.get(case.api_path)
    assert listing.status_code == 200
    assert row.pk not in [item["id"] for item in listing.json()["results"]]
    url = f"{case.api_path}/{row.pk}"
    for response in (
        alpha_admin.client.get(url),
        alpha_admin.client.patch(url, case.patch, content_type="application/json"),
        alpha_admin.client.delete(url),
    ):
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["type"].endswith("/not-found")
    with schema_context("beta"):
        assert apps.get_model(label).objects.filter(pk=row.pk).exists()


def test_session_of_one_tenant_is_not_valid_on_another_host(alpha_admin: TenantUser) -> None:
    alpha_admin.client.defaults["HTTP_HOST"] = "beta.localhost"
    response = alpha_admin.client.get("/api/v1/sites")
    assert response.status_code == 401
    assert response.json()["type"].endswith("/not-authenticated")


def test_request_runs_under_the_tenant_role_and_path(alpha_admin: TenantUser) -> None:
    assert alpha_admin.client.get("/api/v1/sites").status_code == 200
    role, search_path = _live_role_and_path()
    assert role == roles.tenant_role(connection.settings_dict["NAME"], "alpha")
    assert search_path == "alpha, public"


def test_platform_tables_are_closed_to_tenant_roles() -> None:
    with schema_context("alpha"):
        for table in ("tenants_tenant", "tenants_domain", "tenants_plan", "auth_user"):
            with pytest.raises(ProgrammingError, match="permission denied"), \
                    transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SELECT * FROM public.{table}")


def test_savepoint_rollback_never_leaves_a_stale_tenant() -> None:
    """ROLLBACK TO SAVEPOINT reverts a SET; the next statement must still be beta's."""
    with transaction.atomic():
        with schema_context("alpha"):
            _live_role_and_path()
            sid = transaction.savepoint()
            connection.set_schema("beta")
            _live_role_and_path()
            transaction.savepoint_rollback(sid)
            role, search_path = _live_role_and_path()
            assert role.endswith("_t_beta")
            assert search_path == "beta, public"


def test_reset_role_leaves_a_login_that_can_read_nothing() -> None:
    with schema_context("alpha"), pytest.raises(ProgrammingError, match="permission denied"), \
            transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == connection.app_user()
        cursor.execute("SELECT * FROM alpha.inspections_site")


def test_shared_usage_rows_are_confined_by_row_level_security() -> None:
    now = timezone.now()
    with schema_context("alpha"):
        billing_services.usage_record(meter="scans_processed", quantity=3, occurred_at=now,
                                      idempotency_key="a-1")
        billing_services.usage_record(meter="scans_processed", quantity=3, occurred_at=now,
                                      idempotency_key="a-1")  # repeated: recorded once
        assert billing_selectors.usage_total(meter="scans_processed") == 3
    with schema_context("beta"):
        assert billing_selectors.usage_total(meter="scans_processed") == 0
        with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO public.billing_usagerecord (tenant_schema, meter, quantity, "
                    "occurred_at, idempotency_key) VALUES ('alpha', 'api_calls', 1, now(), 'x')"
                )
    assert billing_selectors.usage_total(meter="scans_processed") == 3  # platform sees all


def test_cache_keys_carry_the_tenant() -> None:
    with schema_context("alpha"):
        cache.set("dashboard", "alpha-data", 60)
    with schema_context("beta"):
        assert cache.get("dashboard") is None
        cache.set("dashboard", "beta-data", 60)
    with schema_context("alpha"):
        assert cache.get("dashboard") == "alpha-data"
        assert cache.make_key("dashboard").startswith("alpha:")


def test_storage_keys_carry_the_tenant() -> None:
    with schema_context("alpha"):
        name = default_storage.save("scans/a.laz", ContentFile(b"alpha scan"))
        assert name.startswith("tenants/alpha/scans/")
        assert default_storage.open(name).read() == b"alpha scan"
    with schema_context("beta"):
        assert not default_storage.exists(name)
        with pytest.raises(Exception):  # noqa: B017 - refused whatever the backend's error
            default_storage.open(name).read()
        from django.core.exceptions import SuspiciousFileOperation

        with pytest.raises(SuspiciousFileOperation):
            default_storage.save("../../tenants/alpha/evil", ContentFile(b"x"))
    with schema_context("alpha"):
        default_storage.delete(name)


def test_users_are_per_tenant(db: None) -> None:
    alpha = make_user("alpha", name="same")
    beta = make_user("beta", name="other")
    with schema_context("beta"):
        from django.contrib.auth import get_user_model

        assert not get_user_model().objects.filter(username=alpha.user.username).exists()
    assert beta.schema == "beta"
