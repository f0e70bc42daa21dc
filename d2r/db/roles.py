"""Names of the PostgreSQL roles behind tenant isolation (ADR 0001).

Role names carry the database name so that several databases in one cluster (the
development database and the test database, say) never share a role.

- `<db>_app`: the login role of web, worker and beat processes (the authenticator):
  LOGIN NOINHERIT, owns nothing, holds no privilege of its own. It can only act
  after `SET ROLE` to one of the roles below.
- `<db>_platform`: public-schema requests (platform admin, tenant resolution).
  Rights on `public` only; no rights on any tenant schema.
- `<db>_t_<schema>`: one per tenant, rights on its own schema only, plus the
  row-level-secured shared tables through `<db>_tenants`.
- `<db>_tenants`: group of all tenant roles; holds the grants on shared tables that
  carry tenant rows (always behind FORCE ROW LEVEL SECURITY).
"""

from __future__ import annotations

from django_tenants.utils import get_public_schema_name

MAX_IDENTIFIER = 63


def _prefix(database: str) -> str:
    return database.lower()


def app_role(database: str) -> str:
    return f"{_prefix(database)}_app"


def platform_role(database: str) -> str:
    return f"{_prefix(database)}_platform"


def tenants_group_role(database: str) -> str:
    return f"{_prefix(database)}_tenants"


def tenant_role(database: str, schema_name: str) -> str:
    name = f"{_prefix(database)}_t_{schema_name}"
    if len(name) > MAX_IDENTIFIER:
        raise ValueError(f"Role name {name!r} is longer than {MAX_IDENTIFIER} characters.")
    return name


def role_for_schema(database: str, schema_name: str) -> str:
    if schema_name == get_public_schema_name():
        return platform_role(database)
    return tenant_role(database, schema_name)


def quote(identifier: str) -> str:
    """Quote an identifier for SQL (role and schema names are validated elsewhere)."""
    if '"' in identifier or "\x00" in identifier:
        raise ValueError(f"Invalid identifier {identifier!r}.")
    return f'"{identifier}"'
