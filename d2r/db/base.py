"""django-tenants' backend plus `SET ROLE` to the current tenant's role.

Every cursor issues `SET ROLE <role of the schema>; SET search_path = ...` on the live
connection: nothing is cached, so a `ROLLBACK TO SAVEPOINT` that reverts a `SET`
cannot leave a stale tenant behind (the TENANT_LIMIT_SET_CALLS trap). The login role
(`<db>_app`) holds no privileges, so a statement that somehow runs without the role
set fails instead of reading anything.

Privileged mode (migrations and provisioning only, see `d2r.db.privileged`) logs in
as the owner given by DATABASE_URL and does not switch roles.
"""

from __future__ import annotations

from typing import Any

import django.db.utils
from django_tenants.postgresql_backend import base as tenant_base
from django_tenants.utils import quote_schema_name

from d2r.db import roles


class DatabaseWrapper(tenant_base.DatabaseWrapper):
    """Tenant-aware PostgreSQL connection that switches role with the schema."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.privileged = bool(self.settings_dict.get("PRIVILEGED", False))

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if not self.privileged:
            params["user"] = self.app_user()
            params["password"] = self.settings_dict.get("APP_PASSWORD") or None
            if params["password"] is None:
                params.pop("password")
        return params

    def app_user(self) -> str:
        """The authenticator login: APP_USER, or `<database>_app` by default."""
        return str(self.settings_dict.get("APP_USER") or roles.app_role(self.settings_dict["NAME"]))

    def current_role(self) -> str:
        return roles.role_for_schema(self.settings_dict["NAME"], self.schema_name)

    def _handle_search_path(self, cursor: Any = None) -> None:
        if self._setting_search_path:
            return
        search_paths = self._get_cursor_search_paths()
        statement = "SET search_path = " + ",".join(quote_schema_name(s) for s in search_paths)
        if not self.privileged and self.settings_dict["NAME"]:
            statement = f"SET ROLE {roles.quote(self.current_role())}; {statement}"
        self._setting_search_path = True
        target = self.connection.cursor() if cursor is None else cursor
        try:
            target.execute(statement)
        except (django.db.utils.DatabaseError, tenant_base.psycopg.InternalError):
            # Only reached inside an already-aborted transaction: the next statement
            # fails too, and the role stays the login role, which can read nothing.
            self.search_path_set_schemas = None
        else:
            self.search_path_set_schemas = search_paths
        finally:
            self._setting_search_path = False
            if cursor is None:
                target.close()
