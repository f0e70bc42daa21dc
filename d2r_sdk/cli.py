"""`d2r`: upload scans to D2R Cloud from an edge device or a workstation.

    d2r upload scan.laz --asset 12 --device edge-7 --firmware 2.4.1
    d2r queue list
    d2r queue replay

Server and credential come from --server / --api-key or D2R_SERVER / D2R_API_KEY.
Every upload goes through the local sync queue (D2R_QUEUE, default
~/.local/share/d2r/queue.sqlite3), so an interrupted run is finished by the next
`d2r upload` or `d2r queue replay`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from d2r_sdk.client import Client, UploadError
from d2r_sdk.queue import SyncQueue

DEFAULT_QUEUE = Path.home() / ".local" / "share" / "d2r" / "queue.sqlite3"


class ProgressBar:
    """A one-line progress bar on stderr (throughput and percentage)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        rate = done / max(time.monotonic() - self.start, 1e-6) / 1e6
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{100 * done / max(total, 1):5.1f}% {rate:6.1f} MB/s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _client(args: argparse.Namespace) -> Client:
    if not args.server:
        raise SystemExit("Set --server or D2R_SERVER (your workspace URL).")
    headers = dict(h.split(":", 1) for h in args.header or [])
    return Client(args.server, api_key=args.api_key,
                  headers={k.strip(): v.strip() for k, v in headers.items()},
                  retries=args.retries)


def _metadata(args: argparse.Namespace) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for name in ("device", "firmware", "cad_revision", "operator", "captured_at"):
        if getattr(args, name):
            meta[name] = getattr(args, name)
    if args.calibration:
        meta["calibration"] = json.loads(Path(args.calibration).read_text())
    if args.edge_transform:
        meta["edge_transform"] = json.loads(args.edge_transform)
    return meta


def _report(entries: list[dict[str, Any]]) -> int:
    failed = 0
    for entry in entries:
        ack = json.loads(entry["acknowledgement"]) if entry["acknowledgement"] else {}
        scan = ack.get("scan_id", "-")
        note = entry["last_error"] or ("deduplicated" if ack.get("deduplicated") else "")
        print(f"{entry['status']:8} {Path(entry['path']).name:30} scan {scan} {note}")
        failed += entry["status"] != "done"
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="d2r", description=__doc__.split("\n")[0])
    parser.add_argument("--server", default=os.environ.get("D2R_SERVER"))
    parser.add_argument("--api-key", default=os.environ.get("D2R_API_KEY"))
    parser.add_argument("--header", action="append", help="extra header `Name: value`")
    parser.add_argument("--queue", default=os.environ.get("D2R_QUEUE", str(DEFAULT_QUEUE)))
    parser.add_argument("--retries", type=int, default=8)
    commands = parser.add_subparsers(dest="command", required=True)
    upload = commands.add_parser("upload", help="queue scans and send the queue")
    upload.add_argument("files", nargs="+", type=Path)
    upload.add_argument("--asset", type=int, required=True)
    upload.add_argument("--encoding",
                        choices=["las", "laz", "las+gzip", "las+zstd", "ply", "e57"])
    upload.add_argument("--device")
    upload.add_argument("--firmware")
    upload.add_argument("--cad-revision", dest="cad_revision")
    upload.add_argument("--operator")
    upload.add_argument("--captured-at", dest="captured_at", help="ISO 8601")
    upload.add_argument("--calibration", help="JSON file of calibration constants")
    upload.add_argument("--edge-transform", dest="edge_transform",
                        help="JSON list of 16 numbers (row-major 4x4)")
    queue_cmd = commands.add_parser("queue", help="inspect or replay the sync queue")
    queue_cmd.add_argument("action", choices=["list", "replay"])
    args = parser.parse_args(argv)
    queue = SyncQueue(args.queue)
    try:
        if args.command == "upload":
            for file in args.files:
                queue.enqueue(file, asset=args.asset, encoding=args.encoding, **_metadata(args))
            return _report(queue.replay(_client(args), progress=ProgressBar("upload")))
        if args.action == "replay":
            return _report(queue.replay(_client(args), progress=ProgressBar("upload")))
        return _report(queue.entries())
    except UploadError as exc:
        print(f"d2r: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
