"""D2R Cloud SDK: resumable scan uploads (tus 1.0) with a local sync queue.

    from d2r_sdk import Client, SyncQueue
    client = Client("https://acme.d2r.cloud", api_key="...")
    ack = client.upload("scan.laz", asset=12, device="edge-7")

Only `requests` is needed; the `d2r` command wraps the same calls.
"""

from __future__ import annotations

from d2r_sdk.client import Client, UploadError, verify_acknowledgement
from d2r_sdk.queue import SyncQueue

__all__ = ["Client", "SyncQueue", "UploadError", "verify_acknowledgement"]
__version__ = "0.1.0"
