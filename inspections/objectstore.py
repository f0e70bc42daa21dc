"""Streaming access to the workspace's objects: S3 multipart writes and ranged reads.

django-storages' file API buffers whole objects (a SpooledTemporaryFile), so scans go
through boto3's client directly. Keys are always built by `d2r.storage.tenant_key`:
a name can never leave the current workspace's prefix.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, TypedDict

from django.core.files.storage import default_storage

from d2r.storage import tenant_key


class Part(TypedDict):
    PartNumber: int
    ETag: str


def _client() -> Any:
    # One client for the process (d2r.storage.TenantS3Storage.shared_client), not one per
    # request thread.
    shared = getattr(default_storage, "shared_client", None)
    if shared is not None:
        return shared
    return default_storage.connection.meta.client  # type: ignore[attr-defined]


def _bucket() -> str:
    return str(default_storage.bucket_name)  # type: ignore[attr-defined]


def key_for(name: str) -> str:
    """The full object key of `name` in the current workspace."""
    return tenant_key(name)


def multipart_start(key: str) -> str:
    response = _client().create_multipart_upload(Bucket=_bucket(), Key=key)
    return str(response["UploadId"])


def multipart_put(key: str, multipart_id: str, number: int, data: bytes | bytearray) -> Part:
    response = _client().upload_part(Bucket=_bucket(), Key=key, UploadId=multipart_id,
                                     PartNumber=number, Body=data)
    return {"PartNumber": number, "ETag": str(response["ETag"])}


def multipart_complete(key: str, multipart_id: str, parts: list[Part]) -> None:
    _client().complete_multipart_upload(
        Bucket=_bucket(), Key=key, UploadId=multipart_id,
        MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]}
                                   for p in parts]},
    )


def multipart_abort(key: str, multipart_id: str) -> None:
    _client().abort_multipart_upload(Bucket=_bucket(), Key=key, UploadId=multipart_id)


def put(key: str, data: bytes | bytearray) -> None:
    _client().put_object(Bucket=_bucket(), Key=key, Body=data)


def upload_file(key: str, path: str) -> None:
    """Upload a local file (a worker's scratch output) in streamed multipart parts."""
    _client().upload_file(path, _bucket(), key)


def get(key: str) -> bytes:
    """A small object whole (a staged tail, at most one part)."""
    return bytes(_client().get_object(Bucket=_bucket(), Key=key)["Body"].read())


def delete(key: str) -> None:
    _client().delete_object(Bucket=_bucket(), Key=key)


def size(key: str) -> int:
    return int(_client().head_object(Bucket=_bucket(), Key=key)["ContentLength"])


def iter_chunks(key: str, chunk_size: int = 8 * 1024 * 1024) -> Iterator[bytes]:
    """The object's bytes, streamed in chunks of at most `chunk_size`."""
    body = _client().get_object(Bucket=_bucket(), Key=key)["Body"]
    try:
        yield from body.iter_chunks(chunk_size)
    finally:
        body.close()


class RangeReader(io.RawIOBase):
    """A seekable read-only file over an object, fetching byte ranges on demand.

    laspy seeks (LAZ chunk tables, EVLRs); wrap it in `io.BufferedReader` so small
    reads are served from one buffer-sized ranged GET.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.length = size(key)
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.length:
            return 0
        end = min(self.length, self.position + len(buffer)) - 1
        body = _client().get_object(Bucket=_bucket(), Key=self.key,
                                    Range=f"bytes={self.position}-{end}")["Body"]
        data = body.read()
        body.close()
        view = memoryview(buffer)
        view[: len(data)] = data
        self.position += len(data)
        return len(data)
