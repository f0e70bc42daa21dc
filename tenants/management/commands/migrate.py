"""`migrate` = django-tenants' migrate_schemas, with the autodetector makemigrations uses.

django-pgtrigger (behind django-pghistory) patches Django's own migrate and
makemigrations with a trigger-aware autodetector; django-tenants replaces `migrate`
with its own command, which that patch does not reach. Django 5.2 refuses to start
when the two commands disagree, so this command always takes makemigrations' one.
"""

from __future__ import annotations

from django.core.management.commands import makemigrations
from django.utils.functional import classproperty
from django_tenants.management.commands.migrate_schemas import MigrateSchemasCommand


class Command(MigrateSchemasCommand):
    @classproperty
    def autodetector(cls) -> type:  # a class property: cls, not self
        return makemigrations.Command.autodetector  # type: ignore[no-any-return]
