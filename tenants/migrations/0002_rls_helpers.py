"""SQL helpers for row-level security on shared tables (ADR 0001).

`d2r_current_tenant()` is the schema of the tenant role the session has SET ROLE to
(`<db>_t_<schema>`), or NULL; `d2r_is_platform()` is true under `<db>_platform`.
They derive from `current_user`, which only SET ROLE changes, not from a setting
any statement could overwrite.
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION public.d2r_current_tenant() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN left(current_user::text, length(current_database()) + 3)
             = lower(current_database()) || '_t_'
        THEN substr(current_user::text, length(current_database()) + 4)
    END
$$;
CREATE OR REPLACE FUNCTION public.d2r_is_platform() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT current_user::text = lower(current_database()) || '_platform'
$$;
"""
DROP = """
DROP FUNCTION IF EXISTS public.d2r_current_tenant();
DROP FUNCTION IF EXISTS public.d2r_is_platform();
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RunSQL(CREATE, DROP)]
