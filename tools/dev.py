"""`make run` and `make test`: bring up the services, then serve or test.

run:  services up -> migrate -> demo workspace -> web (uvicorn, ASGI) + worker + beat,
      until Ctrl-C, which stops every child and the embedded services cleanly.
test: services up -> pytest (arguments passed through) -> stop what this started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import services

ROOT = services.ROOT
BIN = Path(sys.executable).parent


def _environment(settings: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(services.up())
    env.setdefault("DJANGO_SETTINGS_MODULE", settings)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, check=True, cwd=ROOT)


def _already_running() -> set[str]:
    manifest = services._load_manifest()
    return {name for name, entry in manifest.items() if services._alive(entry.get("pid"))}  # type: ignore[arg-type]


def _stop_started(before: set[str]) -> None:
    started = set(services._load_manifest()) - before
    if started and not before:
        services.down()


def run() -> int:
    port = os.environ.get("PORT", "8000")
    before = _already_running()
    env = _environment("d2r.settings.local")
    env.setdefault("PUBLIC_URL", f"http://localhost:{port}")
    _manage(env, "d2r_migrate", "--verbosity", "0")
    _manage(env, "demo_seed")
    _manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    queues = "default,ingest,processing,analytics,reports"
    commands = {
        "web": [
            str(BIN / "uvicorn"),
            "d2r.asgi:application",
            "--host",
            os.environ.get("HOST", "127.0.0.1"),
            "--port",
            port,
            "--proxy-headers",
            "--log-level",
            "warning",
        ],
        "worker": [
            str(BIN / "celery"),
            "-A",
            "d2r",
            "worker",
            "-Q",
            queues,
            "--concurrency",
            "2",
            "--loglevel",
            "WARNING",
        ],
        "beat": [
            str(BIN / "celery"),
            "-A",
            "d2r",
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(services.STATE / "celerybeat-schedule"),
        ],
    }
    # The web process: two malloc arenas instead of 8 per core. Each request runs in a
    # thread of its own, and per-thread arenas kept ~3 MB more of a large upload's
    # buffers (benchmarks/README.md, ingest). The worker keeps glibc's default: its
    # numeric code allocates from many threads at once.
    envs = {"web": {"MALLOC_ARENA_MAX": "2", **env}}
    children = {
        name: subprocess.Popen(cmd, env=envs.get(name, env), cwd=ROOT)
        for name, cmd in commands.items()
    }
    print(
        f"""
D2R Cloud is running (Ctrl-C stops everything).
  Platform admin:      http://localhost:{port}/admin/
  Demo workspace:      http://demo.localhost:{port}/admin/
  API docs:            http://demo.localhost:{port}/api/v1/docs/
  Readiness:           http://localhost:{port}/api/v1/ready
  Demo login:          {os.environ.get("DEMO_ADMIN_EMAIL", "admin@demo.d2r.local")} / \
{os.environ.get("DEMO_ADMIN_PASSWORD", "demo-admin-change-me")}
  Other shells reach the same services through .d2r/env (e.g. .venv/bin/python manage.py shell)
""",
        flush=True,
    )

    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping.", file=sys.stderr)
                exit_code = child.returncode or 1
                stopping = True
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
    _stop_started(before)
    print("Stopped.")
    return exit_code


def test(pytest_args: list[str]) -> int:
    before = _already_running()
    env = _environment("d2r.settings.test")
    try:
        return subprocess.run([str(BIN / "pytest"), *pytest_args], env=env, cwd=ROOT).returncode
    finally:
        _stop_started(before)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test"}:
        print("usage: dev.py run | test [pytest args]", file=sys.stderr)
        return 2
    if sys.argv[1] == "run":
        return run()
    return test(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
