"""The device's local sync queue: a SQLite file of scans to upload, safe to replay.

Each scan is queued once (same file content and asset: one entry). `replay()` sends
every entry that is not done, resuming its upload URL when it has one; a crash at
any point leaves the entry to be replayed, and the server's idempotency (same
Idempotency-Key, dedup by hash) makes a second send harmless. The acknowledgement
is stored in the queue and next to the scan as `<scan>.ack.json`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from d2r_sdk.client import Client, Progress, UploadError, guess_encoding, sha256_of

SCHEMA = """
CREATE TABLE IF NOT EXISTS scans (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    asset INTEGER NOT NULL,
    encoding TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'pending',  -- pending, done, failed
    upload_url TEXT,
    acknowledgement TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at REAL NOT NULL,
    UNIQUE (sha256, asset)
)
"""


class SyncQueue:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            yield connection
        finally:
            connection.close()

    def enqueue(self, path: str | Path, *, asset: int, encoding: str | None = None,
                **metadata: Any) -> int:
        """Queue a scan (idempotent: the same content for the same asset is one entry)."""
        file = Path(path).resolve()
        sha256 = sha256_of(file)
        with self._db() as db:
            db.execute(
                "INSERT INTO scans (path, sha256, asset, encoding, metadata, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256, asset) DO UPDATE SET "
                "path = excluded.path, status = CASE WHEN status = 'failed' THEN 'pending' "
                "ELSE status END",
                (str(file), sha256, asset, encoding or guess_encoding(file),
                 json.dumps(metadata), time.time()))
            row = db.execute("SELECT id FROM scans WHERE sha256 = ? AND asset = ?",
                             (sha256, asset)).fetchone()
        return int(row["id"])

    def entries(self) -> list[dict[str, Any]]:
        with self._db() as db:
            return [dict(row) for row in db.execute("SELECT * FROM scans ORDER BY id")]

    def _update(self, entry_id: int, **fields: Any) -> None:
        columns = ", ".join(f"{name} = ?" for name in fields)
        with self._db() as db:
            db.execute(f"UPDATE scans SET {columns}, updated_at = ? WHERE id = ?",
                       (*fields.values(), time.time(), entry_id))

    def replay(self, client: Client, *, progress: Progress | None = None) -> list[dict[str, Any]]:
        """Send every pending entry; returns the entries after the attempt."""
        for entry in self.entries():
            if entry["status"] != "pending":
                continue
            file = Path(entry["path"])
            self._update(entry["id"], attempts=entry["attempts"] + 1)
            try:
                url = entry["upload_url"]
                if url is None:
                    url = client.create(file, asset=entry["asset"], sha256=entry["sha256"],
                                        encoding=entry["encoding"],
                                        metadata=json.loads(entry["metadata"]))
                    self._update(entry["id"], upload_url=url)
                try:
                    client.send(url, file, progress=progress)
                except UploadError as exc:
                    if exc.status != 410:
                        raise
                    # The upload expired or was closed: start a new one next time.
                    self._update(entry["id"], upload_url=None, last_error=str(exc))
                    continue
                ack = client.acknowledgement(url)
                file.with_name(file.name + ".ack.json").write_text(json.dumps(ack, indent=2))
                self._update(entry["id"], status="done", acknowledgement=json.dumps(ack),
                             last_error=None)
            except UploadError as exc:
                final = exc.status is not None and 400 <= exc.status < 500
                self._update(entry["id"], status="failed" if final else "pending",
                             last_error=str(exc))
        return self.entries()
