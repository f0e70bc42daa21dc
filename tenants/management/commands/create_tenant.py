"""`manage.py create_tenant SLUG --name NAME --domain HOST --admin-email EMAIL`."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import services
from tenants.models import Domain, Tenant


class Command(BaseCommand):
    help = "Create a workspace: its schema, database role, domain and first administrator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="Schema name, e.g. acme (lowercase, 2-40 chars).")
        parser.add_argument("--name", required=True)
        parser.add_argument("--domain", required=True, help="Host, e.g. acme.d2r.example")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--plan", default="professional")

    def handle(self, *args: Any, **options: Any) -> None:
        slug, domain = options["slug"], options["domain"].lower()
        if Tenant.objects.filter(schema_name=slug).exists():
            raise CommandError(f"A workspace with slug {slug!r} already exists.")
        if Domain.objects.filter(domain=domain).exists():
            raise CommandError(f"The domain {domain!r} is already in use.")
        try:
            created = services.tenant_create(
                slug=slug, name=options["name"], domain=domain,
                admin_email=options["admin_email"], plan_code=options["plan"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(f"Workspace {created.schema_name} is active."))
        self.stdout.write(f"  admin:    http://{created.domain}/admin/")
        self.stdout.write(f"  login:    {created.admin_email}")
        self.stdout.write(f"  password: {created.admin_password}  (shown once; change it)")
