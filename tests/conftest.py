"""Test database: real PostgreSQL (embedded or DATABASE_URL), two workspaces.

The test database is created and migrated under the owner login; the tests then run
as the unprivileged authenticator, exactly like the web and worker processes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from d2r.db.privileged import privileged

TENANTS = {"alpha": "alpha.localhost", "beta": "beta.localhost"}


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker: pytest.FixtureRequest) -> Iterator[None]:
    from django.core.cache import cache

    from audit import tracking
    from tenants import dbroles, services

    cache.clear()  # the tests' own Redis database; a previous run may have left keys
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        # Fixtures, not changes under test: the workspaces' logs start empty.
        with privileged(), tracking.paused():
            connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
            dbroles.platform_roles_sync()
            services.plans_ensure_defaults()
            for slug, domain in TENANTS.items():
                services.tenant_create(slug=slug, name=slug.title(), domain=domain,
                                       admin_email=f"owner@{slug}.test",
                                       plan_code="professional")
        yield
        with privileged():
            with connection.cursor() as cursor:  # worker and WebSocket threads' connections
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            connection.creation.destroy_test_db(
                connection.settings_dict["NAME"].removeprefix("test_"), verbosity=0
            )


@dataclass
class TenantUser:
    schema: str
    host: str
    client: Client
    user: object


def make_user(schema: str, *, perms: list[str] | None = None, superuser: bool = False,
              name: str = "user", role: str | None = None) -> TenantUser:
    """A user of workspace `schema`, logged in with a client on that workspace's host.

    A fixture: its rows are not logged (audit.tracking), so tests see only their own
    entries; changes under test go through the API or the admin.
    """
    from audit import tracking

    host = TENANTS[schema]
    with schema_context(schema), tracking.paused():
        user = get_user_model().objects.create_user(
            username=f"{name}@{schema}.test", password="a-long-test-password",
            is_superuser=superuser, is_staff=superuser,
        )
        role = role or ("owner" if superuser else None)
        if role is not None:
            from accounts.models import Membership

            Membership.objects.create(user=user, role=role)
        for codename in perms or []:
            app_label, code = codename.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=code)
            )
        client = Client(HTTP_HOST=host)
        client.force_login(user)
    return TenantUser(schema, host, client, user)


@pytest.fixture
def alpha_admin(db: None) -> TenantUser:
    return make_user("alpha", superuser=True, name="admin")


@pytest.fixture
def beta_admin(db: None) -> TenantUser:
    return make_user("beta", superuser=True, name="admin")


@pytest.fixture(autouse=True)
def _public_schema() -> Iterator[None]:
    """Every test starts, like every request, in the public schema."""
    connection.set_schema_to_public()
    yield
    connection.set_schema_to_public()


@dataclass
class LiveServer:
    port: int

    def url(self, host: str, path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="session")
def live_asgi_server(django_db_setup: None, django_db_blocker: object) -> Iterator[LiveServer]:
    """The real ASGI app (HTTP + WebSocket) under uvicorn in a thread, on a free port.

    It uses its own database connections: data it must see has to be committed.
    """
    import socket
    import threading
    import time

    import uvicorn

    from d2r.asgi import application

    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        yield LiveServer(port)
        server.should_exit = True
        thread.join(10)


# pyarrow's thread pools can abort the interpreter while it shuts down, after every test
# has run ("terminate called without an active exception", apache/arrow#34314): a
# finished, green session would then exit 134. Once pytest has reported, leave with its
# own exit status and skip the native teardown.
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
