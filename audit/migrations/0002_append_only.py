"""Append-only audit tables: a trigger refuses UPDATE, DELETE and TRUNCATE (ADR 0004).

The tenant role has no such privileges anyway (tenants.dbroles.APPEND_ONLY_TABLES);
the trigger stops the owner too, so altering the log takes a deliberate superuser
act (disabling triggers), which the verifier then detects. Runs once per schema:
the function is created in the schema being migrated (first on the search_path).
"""

from django.db import migrations

TABLES = ("audit_entry", "audit_treehead", "audit_receipt", "audit_logkey")

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def _triggers(table: str) -> str:
    return (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();"
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();"
    )


def _drop(table: str) -> str:
    return (f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};"
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_log")]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION IF EXISTS audit_refuse_change();"),
        *[migrations.RunSQL(_triggers(t), _drop(t)) for t in TABLES],
    ]
