"""`manage.py demo_seed`: the demo workspace, its admin and a little data (idempotent)."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context

from inspections.models import Asset, Site
from tenants import services
from tenants.models import Tenant

DEMO_SLUG = "demo"


class Command(BaseCommand):
    help = "Create the demo workspace (demo.<BASE_DOMAIN>) with an admin and sample assets."

    def handle(self, *args: Any, **options: Any) -> None:
        from django.conf import settings

        email = os.environ.get("DEMO_ADMIN_EMAIL", "admin@demo.d2r.local")
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "demo-admin-change-me")
        domain = f"{DEMO_SLUG}.{settings.BASE_DOMAIN}"
        tenant = Tenant.objects.filter(schema_name=DEMO_SLUG).first()
        if tenant is None:
            tenant = services.tenant_request(slug=DEMO_SLUG, name="Demo Works",
                                             domain=domain, plan_code="professional")
        services.tenant_provision(tenant_id=tenant.pk)
        services.tenant_admin_create(tenant=tenant, email=email, password=password)
        user_model = get_user_model()
        if not user_model.objects.filter(username=email).exists():
            user_model.objects.create_superuser(username=email, email=email, password=password)
        with schema_context(DEMO_SLUG):
            site, _ = Site.objects.get_or_create(name="Pune Plant", defaults={
                "location": "Chakan MIDC, Pune", "timezone": "Asia/Kolkata"})
            for tag, name, kind in [("P-101", "Feed pump casing", "machine"),
                                    ("T-7", "Storage tank 7", "structure"),
                                    ("BR-22", "Bearing bracket", "part")]:
                Asset.objects.get_or_create(site=site, tag=tag,
                                            defaults={"name": name, "kind": kind})
        self.stdout.write(f"Demo workspace ready at http://{domain}/admin/ ({email})")
