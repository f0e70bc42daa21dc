"""Cost of the isolation design (ADR 0001), measured on this machine.

- per-statement cost of `SET ROLE; SET search_path` (our backend) vs the same
  statement on a connection whose role and path are already set;
- provisioning time of one workspace schema;
- a no-op tenant migration over N schemas: django-tenants' standard executor vs ours,
  which skips schemas that are up to date.
"""

from __future__ import annotations

import io
import statistics
import time

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.migration_executors import get_executor as stock_executor  # noqa: E402

from d2r.db.privileged import privileged  # noqa: E402
from tenants import dbroles, services  # noqa: E402
from tenants.models import Domain, Tenant  # noqa: E402

N_SCHEMAS = 20
PREFIX = "bench_t"


def per_statement_us() -> tuple[float, float]:
    connection.set_schema("demo")
    raw = connection.cursor().cursor  # psycopg cursor: no SET per statement
    samples_raw, samples_ours = [], []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(2000):
            raw.execute("SELECT 1")
        samples_raw.append((time.perf_counter() - start) / 2000 * 1e6)
        start = time.perf_counter()
        for _ in range(2000):
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        samples_ours.append((time.perf_counter() - start) / 2000 * 1e6)
    connection.set_schema_to_public()
    return statistics.median(samples_raw), statistics.median(samples_ours)


def main() -> None:
    raw_us, ours_us = per_statement_us()
    print(f"BENCH tenancy_select1_plain_us {raw_us:.1f}")
    print(f"BENCH tenancy_select1_with_role_switch_us {ours_us:.1f}")
    print(f"BENCH tenancy_role_switch_overhead_us {ours_us - raw_us:.1f}")
    with privileged():
        created = []
        provision = []
        for index in range(N_SCHEMAS):
            slug = f"{PREFIX}{index}"
            if not Tenant.objects.filter(schema_name=slug).exists():
                tenant = services.tenant_request(slug=slug, name=slug,
                                                 domain=f"{slug}.bench.localhost")
                start = time.perf_counter()
                services.tenant_provision(tenant_id=tenant.pk)
                provision.append(time.perf_counter() - start)
            created.append(slug)
        if provision:
            print(f"BENCH tenancy_provision_schema_seconds {statistics.median(provision):.2f}")
        schemas = list(Tenant.objects.exclude(schema_name="public")
                       .values_list("schema_name", flat=True))
        options = {"verbosity": 0, "interactive": False, "database": "default",
                   "app_label": None, "migration_name": None, "fake": False,
                   "fake_initial": False, "plan": False, "prune": False, "run_syncdb": False,
                   "check_unapplied": False, "skip_checks": True,
                   "force_color": False, "no_color": True, "traceback": False,
                   "settings": None, "pythonpath": None}
        start = time.perf_counter()
        stock_executor("standard")([], options).run_migrations(tenants=schemas)
        stock = time.perf_counter() - start
        start = time.perf_counter()
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=0,
                     stdout=io.StringIO())
        ours = time.perf_counter() - start
        print(f"BENCH tenancy_noop_migrate_{len(schemas)}_schemas_stock_seconds {stock:.2f}")
        print(f"BENCH tenancy_noop_migrate_{len(schemas)}_schemas_ours_seconds {ours:.2f}")
        print(f"BENCH tenancy_noop_migrate_speedup {stock / ours:.1f}")
        for slug in created:
            Domain.objects.filter(tenant__schema_name=slug).delete()
            Tenant.objects.filter(schema_name=slug).delete()
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{slug}" CASCADE')
            dbroles.tenant_role_drop(slug)


if __name__ == "__main__":
    main()
