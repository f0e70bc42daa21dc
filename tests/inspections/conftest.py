"""Object-store hygiene for the ingestion tests: what a session wrote is removed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest


@pytest.fixture(scope="session", autouse=True)
def _remove_session_objects() -> Iterator[None]:
    """Delete the scan objects and abort the multipart uploads this session created."""
    started = datetime.now(UTC) - timedelta(seconds=5)
    yield
    from django.core.files.storage import default_storage

    client = getattr(getattr(default_storage, "connection", None), "meta", None)
    if client is None:  # filesystem fallback: nothing to do
        return
    s3, bucket = client.client, default_storage.bucket_name  # type: ignore[attr-defined]
    for schema in ("alpha", "beta"):
        prefix = f"tenants/{schema}/scans/"
        with contextlib.suppress(Exception):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                     Prefix=prefix):
                for item in page.get("Contents", []):
                    if item["LastModified"] >= started:
                        s3.delete_object(Bucket=bucket, Key=item["Key"])
        with contextlib.suppress(Exception):
            pending = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
            for item in pending.get("Uploads", []):
                if item["Initiated"] >= started:
                    s3.abort_multipart_upload(Bucket=bucket, Key=item["Key"],
                                              UploadId=item["UploadId"])
