"""`manage.py d2r_migrate`: shared schema, roles, plans, then every tenant schema.

Safe to run again at any time; tenant schemas already up to date are skipped.
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from tenants import dbroles, services
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Migrate the public schema and all workspaces; (re)apply database roles."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--executor", default="standard",
                            choices=["standard", "multiprocessing"])

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options["verbosity"]
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        dbroles.platform_roles_sync()
        services.plans_ensure_defaults()
        schemas = list(
            Tenant.objects.exclude(schema_name="public")
            .exclude(status__in=[Tenant.Status.PROVISIONING, Tenant.Status.FAILED])
            .values_list("schema_name", flat=True)
        )
        if schemas:
            call_command("migrate_schemas", tenant=True, interactive=False,
                         executor=options["executor"], verbosity=verbosity)
            for schema in schemas:
                dbroles.tenant_role_sync(schema)
        self.stdout.write(f"Migrated public and {len(schemas)} workspace(s).")
