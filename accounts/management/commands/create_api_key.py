"""`manage.py create_api_key --tenant SLUG --role ROLE --name NAME` prints a key once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_tenants.utils import tenant_context

from accounts import events
from accounts.credentials import api_key_issue
from accounts.models import ApiKey
from accounts.roles import Capability, Role
from audit import tracking
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Create an API key for a workspace; the key is printed once and never stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--name", required=True)
        parser.add_argument("--scope", action="append", default=[],
                            choices=[c.value for c in Capability],
                            help="Limit the key to this capability (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(schema_name=options["tenant"]).first()
        if tenant is None or tenant.status != Tenant.Status.ACTIVE:
            raise CommandError(f"No active workspace {options['tenant']!r}.")
        with tenant_context(tenant), transaction.atomic(), \
                tracking.recorded_by_caller(ApiKey) as changes:
            issued = api_key_issue(schema=tenant.schema_name, name=options["name"],
                                   role=options["role"], scopes=options["scope"])
            events.auth_event("api_key.create", actor="manage.py", subject_id=issued.api_key_id,
                              role=options["role"], rows=tracking.rows(changes))
        self.stdout.write(issued.key)
        self.stderr.write(f"Key {issued.prefix} for {tenant.schema_name} ({options['role']}); "
                          "store it now, it is not shown again.")
