"""Create and grant the PostgreSQL roles behind tenant isolation (ADR 0001).

Runs under the owner login only (migrations, provisioning). Every function is
idempotent: running it again converges on the same grants.
"""

from __future__ import annotations

from django.db import connection

from d2r.db import roles
from d2r.db.roles import quote

# Shared tables in `public` that carry tenant rows. Each has FORCE ROW LEVEL SECURITY
# with a policy on `tenant_schema = d2r_current_tenant()` (see billing migrations).
# Tenant roles get exactly these privileges on them, and nothing else in public.
RLS_TABLES: dict[str, tuple[str, ...]] = {
    "billing_usagerecord": ("SELECT", "INSERT"),
}
DML = "SELECT, INSERT, UPDATE, DELETE"
# Tenant tables the tenant role may only read and append to (the audit log, ADR 0004):
# the default DML grant is narrowed to these privileges after every sync.
APPEND_ONLY_TABLES: dict[str, tuple[str, ...]] = {
    "audit_entry": ("SELECT", "INSERT"),
    "audit_treehead": ("SELECT", "INSERT"),
    "audit_receipt": ("SELECT", "INSERT"),
    "audit_logkey": ("SELECT", "INSERT"),
    "audit_merklenode": ("SELECT", "INSERT"),
    # Row history (django-pghistory): written by triggers, never edited.
    "accounts_membershipevent": ("SELECT", "INSERT"),
    "accounts_apikeyevent": ("SELECT", "INSERT"),
    "accounts_workspacepolicyevent": ("SELECT", "INSERT"),
    "devices_deviceevent": ("SELECT", "INSERT"),
    "inspections_assetevent": ("SELECT", "INSERT"),
}


def _ensure_role(cursor, name: str, options: str) -> None:  # type: ignore[no-untyped-def]
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    verb = "ALTER" if cursor.fetchone() else "CREATE"
    cursor.execute(f"{verb} ROLE {quote(name)} {options}")


def _database() -> str:
    return str(connection.settings_dict["NAME"])


def platform_roles_sync() -> None:
    """Create the authenticator, platform and tenants-group roles; grant on `public`."""
    if not connection.privileged:
        raise RuntimeError("Role management needs the owner login (d2r.db.privileged).")
    db = _database()
    app, platform, group = (
        connection.app_user(),
        roles.platform_role(db),
        roles.tenants_group_role(db),
    )
    password = connection.settings_dict.get("APP_PASSWORD") or None
    with connection.cursor() as cursor:
        login = "LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
        if password:
            cursor.execute("SELECT format('PASSWORD %%L', %s::text)", [password])
            login += " " + cursor.fetchone()[0]
        _ensure_role(cursor, app, login)
        _ensure_role(cursor, platform, "NOLOGIN NOBYPASSRLS")
        _ensure_role(cursor, group, "NOLOGIN NOBYPASSRLS")
        cursor.execute(f"GRANT {quote(platform)} TO {quote(app)}")
        cursor.execute(f"GRANT CONNECT ON DATABASE {quote(db)} TO {quote(app)}")
        cursor.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {quote(platform)}, {quote(group)}")
        cursor.execute(f"GRANT {DML} ON ALL TABLES IN SCHEMA public TO {quote(platform)}")
        cursor.execute(
            f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {quote(platform)}"
        )
        cursor.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {DML} ON TABLES TO {quote(platform)}"
        )
        cursor.execute(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {quote(platform)}"
        )
        for table, privileges in RLS_TABLES.items():
            cursor.execute(
                f"GRANT {', '.join(privileges)} ON public.{quote(table)} TO {quote(group)}"
            )
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [f"public.{table}"])
            sequence = cursor.fetchone()[0]
            if sequence:
                cursor.execute(f"GRANT USAGE ON SEQUENCE {sequence} TO {quote(group)}")


def tenant_role_sync(schema_name: str) -> str:
    """Create the tenant's role with rights on its own schema only; return its name."""
    if not connection.privileged:
        raise RuntimeError("Role management needs the owner login (d2r.db.privileged).")
    db = _database()
    role, schema = roles.tenant_role(db, schema_name), quote(schema_name)
    with connection.cursor() as cursor:
        _ensure_role(cursor, role, "NOLOGIN INHERIT NOBYPASSRLS")
        cursor.execute(f"GRANT {quote(roles.tenants_group_role(db))} TO {quote(role)}")
        cursor.execute(f"GRANT {quote(role)} TO {quote(connection.app_user())}")
        cursor.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {quote(role)}")
        cursor.execute(f"GRANT {DML} ON ALL TABLES IN SCHEMA {schema} TO {quote(role)}")
        cursor.execute(
            f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {quote(role)}"
        )
        cursor.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {DML} ON TABLES TO {quote(role)}"
        )
        cursor.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
            f"GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {quote(role)}"
        )
        for table, privileges in APPEND_ONLY_TABLES.items():
            cursor.execute("SELECT to_regclass(%s)", [f"{schema}.{quote(table)}"])
            if cursor.fetchone()[0] is not None:
                target = f"{schema}.{quote(table)}"
                cursor.execute(f"REVOKE ALL ON {target} FROM {quote(role)}")
                cursor.execute(f"GRANT {', '.join(privileges)} ON {target} TO {quote(role)}")
    return role


def tenant_role_drop(schema_name: str) -> None:
    """Drop the tenant's role (after its schema is gone)."""
    role = quote(roles.tenant_role(_database(), schema_name))
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role.strip('"')])
        if cursor.fetchone():
            cursor.execute(f"DROP OWNED BY {role}")
            cursor.execute(f"DROP ROLE {role}")
