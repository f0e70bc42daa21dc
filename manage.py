#!/usr/bin/env python
"""Django's command-line utility for D2R Cloud."""

from __future__ import annotations

import os
import sys

# Commands that change schemas or roles log in as the schema owner (DATABASE_URL's
# user); every other command runs as the unprivileged authenticator (ADR 0001).
PRIVILEGED_COMMANDS = {
    "migrate", "migrate_schemas", "d2r_migrate", "create_tenant", "delete_tenant",
    "demo_seed", "makemigrations", "showmigrations", "sqlmigrate", "dbshell",
    "createsuperuser", "create_tenant_superuser", "clone_tenant", "flush",
}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "d2r.settings.local")
    if len(sys.argv) > 1 and sys.argv[1] in PRIVILEGED_COMMANDS:
        os.environ["D2R_DB_PRIVILEGED"] = "1"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
