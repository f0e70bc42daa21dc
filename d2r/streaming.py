"""ASGI request bodies streamed to the view instead of spooled to a temporary file.

Django's ASGIHandler reads the whole body into a SpooledTemporaryFile (memory, then
disk) before it calls the view: a 2 GB scan would cross the local disk once more and
the view could only start after the last byte. For the content types in
`STREAMED_CONTENT_TYPES` (tus PATCH bodies) this handler hands the view a file-like
object that pulls the body from the ASGI server as the view reads it, so memory is
bounded by what the view asks for and the server's flow control (uvicorn pauses the
socket while the application does not receive).

Under WSGI nothing changes: `request.read(n)` already streams from `wsgi.input`.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from asgiref.sync import async_to_sync
from django.core.handlers.asgi import ASGIHandler

STREAMED_CONTENT_TYPES = (b"application/offset+octet-stream",)
# Each hop from the view's thread to the event loop gathers up to this many bytes.
PULL_BYTES = 1024 * 1024


class ClientDisconnected(OSError):
    """The client went away before the whole request body arrived."""


class StreamingBody:
    """A read-only, forward-only body: `read(n)` pulls ASGI messages on demand.

    Like a socket, `read(n)` may return fewer than `n` bytes; `b""` means the body
    ended. A disconnect before the announced end raises ClientDisconnected once the
    bytes that did arrive have been read.
    """

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._more = True
        self.disconnected = False

    async def _pull(self, wanted: int) -> None:
        while self._more and self._buffered < wanted:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._more = False
                self.disconnected = True
                break
            body = message.get("body", b"")
            if body:
                self._chunks.append(body)
                self._buffered += len(body)
            self._more = bool(message.get("more_body", False))

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise ValueError("A streamed body is read in bounded chunks only.")
        if not self._chunks and self._more:
            async_to_sync(self._pull)(PULL_BYTES)
        if not self._chunks:
            if self.disconnected:
                raise ClientDisconnected("The client disconnected during the request body.")
            return b""
        out: list[bytes] = []
        taken = 0
        while self._chunks and taken < size:
            chunk = self._chunks.popleft()
            if taken + len(chunk) > size:
                keep = size - taken
                self._chunks.appendleft(chunk[keep:])
                chunk = chunk[:keep]
            out.append(chunk)
            taken += len(chunk)
        self._buffered -= taken
        return out[0] if len(out) == 1 else b"".join(out)

    def readinto(self, buffer: Any) -> int:
        """Copy up to `len(buffer)` bytes straight into `buffer` (no joined copy); 0 at end.

        Pulls at most `PULL_BYTES` beyond what the ASGI server already gave us, so the
        process holds the caller's buffer plus about one pull.
        """
        target = memoryview(buffer).cast("B")
        size = len(target)
        if not self._chunks and self._more:
            async_to_sync(self._pull)(min(PULL_BYTES, size))
        if not self._chunks:
            if self.disconnected:
                raise ClientDisconnected("The client disconnected during the request body.")
            return 0
        taken = 0
        while self._chunks and taken < size:
            chunk = self._chunks.popleft()
            n = min(len(chunk), size - taken)
            target[taken : taken + n] = memoryview(chunk)[:n]
            if n < len(chunk):
                self._chunks.appendleft(chunk[n:])
            taken += n
        self._buffered -= taken
        return taken

    def readline(self, size: int = -1) -> bytes:  # Django's request API; never on tus bodies
        raise OSError("A streamed body has no lines.")

    def close(self) -> None:
        self._chunks.clear()


class StreamingASGIHandler(ASGIHandler):
    """Django's ASGI handler, except that some bodies are streamed (see module doc)."""

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if scope.get("method") not in ("PATCH", "POST") or (
            content_type not in STREAMED_CONTENT_TYPES
        ):
            await super().handle(scope, receive, send)
            return
        from django.core import signals
        from django.core.handlers.asgi import get_script_prefix
        from django.urls import set_script_prefix

        body = StreamingBody(receive)
        set_script_prefix(get_script_prefix(scope))
        await signals.request_started.asend(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body)  # type: ignore[arg-type]
        if request is None:
            await self.send_response(error_response, send)
            return
        # No disconnect listener: the body stream is the one reader of `receive`, and
        # the view learns of a disconnect from it (ClientDisconnected).
        response = await self.run_get_response(request)
        try:
            await self.send_response(response, send)
        except (asyncio.CancelledError, OSError):
            pass
        from asgiref.sync import sync_to_async

        await sync_to_async(response.close)()
        body.close()
