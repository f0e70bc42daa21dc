"""Fast tenant migrations: skip schemas that are already up to date (ADR 0001).

A no-op `migrate_schemas` over N schemas otherwise loads the migration graph and
checks every schema in turn (minutes at hundreds of tenants). Here one small query
per schema compares its applied migrations with the graph; only schemas that lack
something are handed to django-tenants' executor (standard or multiprocessing).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django_tenants.migration_executors import get_executor as base_get_executor
from django_tenants.utils import get_public_schema_name

from d2r.db.roles import quote


def tenant_migration_targets() -> set[tuple[str, str]]:
    """Every (app, migration) a tenant schema must have applied."""
    labels = {apps.get_app_config(app.rsplit(".", 1)[-1]).label for app in settings.TENANT_APPS}
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return {key for key in loader.graph.nodes if key[0] in labels}


def pending_schemas(schemas: Iterable[str]) -> list[str]:
    """The schemas among `schemas` that miss at least one tenant migration."""
    targets = tenant_migration_targets()
    pending = []
    with connection.cursor() as cursor:
        for schema in schemas:
            cursor.execute(
                "SELECT to_regclass(%s) IS NOT NULL", [f"{quote(schema)}.django_migrations"]
            )
            if not cursor.fetchone()[0]:
                pending.append(schema)
                continue
            cursor.execute(f"SELECT app, name FROM {quote(schema)}.django_migrations")
            if not targets <= set(cursor.fetchall()):
                pending.append(schema)
    return pending


def get_executor(codename: str | None = None) -> type:
    """django-tenants' executor, restricted to schemas with pending migrations.

    Explicit targets (an app label, a migration name, --fake) run everywhere as asked.
    """
    base = base_get_executor(codename)

    class PendingOnlyExecutor(base):  # type: ignore[misc,valid-type]
        def run_migrations(self, tenants: Any = None) -> Any:
            explicit = self.options.get("app_label") or self.options.get("fake")
            public = get_public_schema_name()
            if tenants and not explicit:
                schemas = [s for s in tenants if s != public]
                todo = set(pending_schemas(schemas))
                tenants = [s for s in tenants if s == public or s in todo]
                skipped = len(schemas) - len(todo)
                if skipped and int(self.options.get("verbosity", 1)) >= 1:
                    self.logger_info(f"{skipped} tenant schema(s) already up to date")
            if not tenants:
                return None
            return super().run_migrations(tenants=tenants)

        def logger_info(self, message: str) -> None:
            import sys

            sys.stdout.write(message + "\n")

    PendingOnlyExecutor.codename = base.codename
    return PendingOnlyExecutor
