"""A tus 1.0 client for D2R Cloud's `/api/v1/uploads`, built on `requests`.

Resumes after any failure by asking the server for its offset (HEAD) and retries
with exponential backoff and jitter. The `Idempotency-Key` of the creating POST is
derived from the file's SHA-256 and asset, so a device that crashed after creating
an upload (but before saving its URL) finds the same upload again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

TUS = {"Tus-Resumable": "1.0.0"}
ENCODINGS = {".las": "las", ".laz": "laz", ".ply": "ply", ".e57": "e57", ".gz": "las+gzip",
             ".zst": "las+zstd"}
RETRY_STATUSES = {408, 423, 425, 429, 500, 502, 503, 504}
Progress = Callable[[int, int], None]


class UploadError(Exception):
    """The server refused the upload for good (not worth retrying)."""

    def __init__(self, message: str, status: int | None = None,
                 problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem or {}


def sha256_of(path: Path, block: int = 8 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def guess_encoding(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".gz", ".zst") and path.with_suffix("").suffix.lower() != ".las":
        raise UploadError(f"Only LAS is accepted inside {suffix}: {path.name}.")
    if suffix not in ENCODINGS:
        raise UploadError(f"Cannot tell the encoding of {path.name}; pass --encoding.")
    return ENCODINGS[suffix]


def verify_acknowledgement(ack: dict[str, Any], public_key_b64: str) -> bool:
    """Check the server's Ed25519 signature (needs the `cryptography` package)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    body = {k: v for k, v in ack.items() if k != "signature"}
    message = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64)).verify(
            base64.b64decode(ack["signature"]), message)
    except (InvalidSignature, KeyError, ValueError):
        return False
    return True


class Client:
    """One workspace of D2R Cloud.

    `base_url` is the workspace's URL (`https://acme.d2r.cloud`). Authenticate with
    `api_key` (`Authorization: Api-Key ...`), a bearer `token`, or extra `headers`.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, token: str | None = None,
                 headers: dict[str, str] | None = None, chunk_size: int = 16 * 1024 * 1024,
                 retries: int = 8, backoff: float = 1.0, max_backoff: float = 60.0,
                 timeout: float = 120.0, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.headers = dict(headers or {})
        if api_key:
            self.headers["Authorization"] = f"Api-Key {api_key}"
        elif token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.chunk_size = chunk_size
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.sleep: Callable[[float], None] = time.sleep

    # --- HTTP -----------------------------------------------------------------------

    def _url(self, path_or_url: str) -> str:
        return path_or_url if path_or_url.startswith("http") else self.base_url + path_or_url

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **TUS, **kwargs.pop("headers", {})}
        return self.session.request(method, self._url(url), headers=headers,
                                    timeout=self.timeout, **kwargs)

    def _retrying(self, attempt: Callable[[], requests.Response | None]) -> requests.Response:
        """Run `attempt` until it returns a final response; back off on transient errors."""
        failures = 0
        while True:
            error: str
            try:
                response = attempt()
                if response is not None and response.status_code not in RETRY_STATUSES:
                    return response
                error = f"HTTP {response.status_code}" if response is not None else "retry"
                wait = float(response.headers.get("Retry-After", 0) or 0) if response else 0.0
            except (requests.ConnectionError, requests.Timeout) as exc:
                error, wait = type(exc).__name__, 0.0
            failures += 1
            if failures > self.retries:
                raise UploadError(f"Gave up after {failures} attempts ({error}).")
            delay = min(self.max_backoff, self.backoff * 2 ** (failures - 1))
            self.sleep(max(wait, delay * (0.5 + random.random() / 2)))  # noqa: S311

    @staticmethod
    def _refuse(response: requests.Response, what: str) -> UploadError:
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        detail = problem.get("detail") or response.text[:200]
        return UploadError(f"{what}: HTTP {response.status_code} {detail}",
                           response.status_code, problem)

    # --- tus ------------------------------------------------------------------------

    def create(self, path: Path, *, asset: int, sha256: str, encoding: str,
               metadata: dict[str, Any] | None = None) -> str:
        """Open an upload; returns its URL (idempotent for the same file and asset)."""
        size = path.stat().st_size
        fields = {"asset": str(asset), "sha256": sha256, "encoding": encoding,
                  "size": str(size), "filename": path.name}
        for key, value in (metadata or {}).items():
            if value is not None:
                fields[key] = value if isinstance(value, str) else json.dumps(value)
        header = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                          for k, v in fields.items())
        key = hashlib.sha256(f"{sha256}:{asset}".encode()).hexdigest()
        response = self._retrying(lambda: self._request(
            "POST", "/api/v1/uploads", headers={"Upload-Length": str(size),
                                                "Upload-Metadata": header,
                                                "Idempotency-Key": key}))
        if response.status_code != 201:
            raise self._refuse(response, "Creating the upload failed")
        return self._url(response.headers["Location"])

    def offset(self, url: str) -> int:
        response = self._retrying(lambda: self._request("HEAD", url))
        if response.status_code != 200:
            raise self._refuse(response, "The upload is gone")
        return int(response.headers["Upload-Offset"])

    def send(self, url: str, path: Path, *, progress: Progress | None = None) -> dict[str, str]:
        """PATCH the file from the server's offset on, chunk by chunk, resuming after
        failures; returns the last response's headers."""
        size = path.stat().st_size
        offset = self.offset(url)
        headers: dict[str, str] = {}
        with path.open("rb") as handle:
            while offset < size:
                handle.seek(offset)
                chunk = handle.read(min(self.chunk_size, size - offset))
                checksum = base64.b64encode(hashlib.sha256(chunk).digest()).decode()

                def attempt(chunk: bytes = chunk, at: int = offset,
                            checksum: str = checksum) -> requests.Response | None:
                    response = self._request("PATCH", url, data=chunk, headers={
                        "Upload-Offset": str(at), "Upload-Checksum": f"sha256 {checksum}",
                        "Content-Type": "application/offset+octet-stream"})
                    if response.status_code == 460 and self._request(
                            "HEAD", url).status_code == 200:
                        return None  # corrupted in transit: send this chunk again
                    return response

                response = self._retrying(attempt)
                if response.status_code == 409:  # a dropped PATCH kept some bytes: resync
                    offset = self.offset(url)
                    continue
                if response.status_code != 204:
                    raise self._refuse(response, "Sending the scan failed")
                offset = int(response.headers["Upload-Offset"])
                headers = dict(response.headers)
                if progress:
                    progress(offset, size)
        return headers

    def acknowledgement(self, url: str) -> dict[str, Any]:
        response = self._retrying(lambda: self._request("GET", f"{url}/acknowledgement"))
        if response.status_code != 200:
            raise self._refuse(response, "No acknowledgement")
        return dict(response.json())

    def public_key(self) -> str:
        response = self._retrying(lambda: self._request(
            "GET", "/api/v1/uploads/acknowledgement-key"))
        if response.status_code != 200:
            raise self._refuse(response, "No acknowledgement key")
        return str(response.json()["public_key"])

    def upload(self, path: str | os.PathLike[str], *, asset: int, encoding: str | None = None,
               progress: Progress | None = None, url: str | None = None,
               **metadata: Any) -> dict[str, Any]:
        """Upload one scan end to end; returns the server's signed acknowledgement."""
        file = Path(path)
        sha256 = sha256_of(file)
        url = url or self.create(file, asset=asset, sha256=sha256,
                                 encoding=encoding or guess_encoding(file), metadata=metadata)
        self.send(url, file, progress=progress)
        ack = self.acknowledgement(url)
        if ack.get("sha256") != sha256:
            raise UploadError("The acknowledgement is for different content.")
        return ack
