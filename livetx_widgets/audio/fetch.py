"""One HTTP GET whose body is read like a file: every read times out, and another thread can cut it.

``NetworkStream`` feeds response bodies to FFmpeg as file objects, from its own reader thread.
Two things the stdlib's ``urlopen`` does not give: a stop from another thread must end a read
that is stuck on a silent server (``abort`` shuts the socket down, which wakes a blocked
``recv`` at once), and a stalled server must be told apart from a slow one (every ``recv`` has
``timeout`` seconds, after which ``read`` raises ``Stalled``). Redirects are followed (a few);
``https`` uses the system's certificate store; SHOUTcast's ``ICY 200 OK`` is accepted. Stdlib
only (``http.client``).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit, urlunsplit

MAX_REDIRECTS = 5
USER_AGENT = "livetx-widgets (NetworkStream)"


class Stalled(TimeoutError):
    """No byte arrived for ``timeout`` seconds."""


class HttpStatusError(OSError):
    """The server answered with an error status. ``permanent``: retrying will not help."""

    def __init__(self, status: int, reason: str, url: str):
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status
        self.reason = reason
        self.url = url
        self.permanent = 400 <= status < 500 and status not in (408, 425, 429)


def redact(url: str) -> str:
    """``url`` without user:password and with query values hidden (tokens often live there)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = "&".join(f"{kv.partition('=')[0]}=***" for kv in parts.query.split("&") if kv)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class _OneLine:
    """A file whose ``readline`` returns one given line (for ``_IcyResponse``)."""

    def __init__(self, line: bytes):
        self._line = line

    def readline(self, limit: int = -1) -> bytes:
        line, self._line = self._line, b""
        return line


class _IcyResponse(http.client.HTTPResponse):
    """Also accepts SHOUTcast's ``ICY 200 OK`` status line (as ``HTTP/1.0 200 OK``): old
    stations still answer with it, and ``http.client`` rejects anything not ``HTTP/``."""

    def _read_status(self):
        real = self.fp
        line = real.readline(65537)
        if line.startswith(b"ICY "):
            line = b"HTTP/1.0 " + line[4:]
        self.fp = _OneLine(line)
        try:
            return super()._read_status()
        finally:
            self.fp = real


class Body:
    """The body of ``GET url`` (after redirects). ``content_type`` is the final response's.

    ``open()`` sends the request (built first, so that its owner can register it for
    ``abort`` before the connect); ``read(n)`` returns up to ``n`` bytes (``b""`` at the end)
    or raises ``Stalled``; ``abort()`` (any thread) makes a pending or later ``read`` end at
    once; ``close()`` frees the connection.
    """

    def __init__(self, url: str, *, timeout: float, headers: dict[str, str] | None = None):
        self.url = url
        self.timeout = timeout
        self.content_type = ""
        self._headers = headers or {}
        self._lock = threading.Lock()
        self._aborted = False
        self._conn: http.client.HTTPConnection | None = None
        self._resp: http.client.HTTPResponse | None = None
        self._sock: socket.socket | None = None
        self._head = b""  # bytes given back by ``unread``

    def open(self) -> Body:
        hdrs = {"User-Agent": USER_AGENT, "Accept": "*/*", "Icy-MetaData": "0", **self._headers}
        for _ in range(MAX_REDIRECTS + 1):  # bounded: a redirect loop ends with an error
            self._resp = self._get(self.url, hdrs)
            status = self._resp.status
            location = self._resp.getheader("Location")
            if status in (301, 302, 303, 307, 308) and location:
                self._resp.close()
                self.url = urljoin(self.url, location)
                continue
            if status >= 400:
                reason = self._resp.reason or ""
                self.close()
                raise HttpStatusError(status, reason, redact(self.url))
            break
        else:
            self.close()
            raise HttpStatusError(310, "too many redirects", redact(self.url))
        self.content_type = (self._resp.getheader("Content-Type") or "").split(";")[0].strip()
        self.content_type = self.content_type.lower()
        return self

    def _get(self, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HttpStatusError(400, f"not an http(s) URL: {redact(url)}", redact(url))
        with self._lock:
            if self._aborted:
                raise Stalled("stopped")
            if self._conn is not None:
                self._conn.close()
            if parts.scheme == "https":
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    parts.hostname, parts.port, timeout=self.timeout,
                    context=ssl.create_default_context(),
                )  # fmt: skip
            else:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
            conn.response_class = _IcyResponse
            self._conn = conn
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            conn.request("GET", path, headers=headers)
            with self._lock:
                # Kept here: for a response that ends with the connection, getresponse() hands
                # the socket to the response and clears conn.sock.
                self._sock = conn.sock
                aborted = self._aborted
            if aborted:
                self.abort()
            return conn.getresponse()
        except TimeoutError as exc:
            raise Stalled(f"no answer within {self.timeout:g} s") from exc

    def read(self, n: int) -> bytes:
        if self._head:
            data, self._head = self._head[:n], self._head[n:]
            return data
        if self._aborted or self._resp is None:
            return b""
        try:
            return self._resp.read1(n)
        except TimeoutError as exc:
            if self._aborted:
                return b""
            raise Stalled(f"no data for {self.timeout:g} s") from exc
        except (OSError, ValueError, http.client.HTTPException):
            if self._aborted:  # the socket was shut down under the read: a stop, not a fault
                return b""
            raise

    def read_all(self, limit: int) -> bytes:
        """The whole body (at most ``limit`` bytes; more is an error)."""
        parts: list[bytes] = []
        size = 0
        while True:  # bounded by ``limit``
            data = self.read(65536)
            if not data:
                return b"".join(parts)
            size += len(data)
            if size > limit:
                raise HttpStatusError(413, f"larger than {limit} bytes", redact(self.url))
            parts.append(data)

    def unread(self, data: bytes) -> None:
        """Give bytes back: the next ``read`` returns them first (for sniffing the start)."""
        self._head = data + self._head

    def abort(self) -> None:
        """End a blocked ``read`` now (from any thread)."""
        with self._lock:
            self._aborted = True
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()


class Stopped(Exception):
    """The source was stopped: the reader thread unwinds (never an error)."""


class GaveUp(Exception):
    """Too many failures in a row without progress; ``last`` is the last one."""

    def __init__(self, attempts: int, last: BaseException | None):
        super().__init__(f"gave up after {attempts} attempts: {last}")
        self.attempts = attempts
        self.last = last


class Retry:
    """Backoff shared by every retry of one stream: reconnects, playlist and segment fetches.

    ``failed(exc)`` counts a failure (and tells ``on_failure``), then waits
    ``backoff_s * 2**(n-1)`` (at most ``max_backoff_s``) on ``stop``, or raises ``GaveUp``
    once more than ``max_retries`` failed in a row, or ``Stopped`` when the source is stopped
    meanwhile. ``progress()`` (audio arrived) resets the count, so a stream that drops now and
    then never runs out of tries.
    """

    def __init__(self, *, max_retries: int, backoff_s: float, max_backoff_s: float,
                 stop: threading.Event,
                 on_failure: Callable[[BaseException], None] | None = None):  # fmt: skip
        self.on_failure = on_failure
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.stop = stop
        self.failures = 0
        self.last: BaseException | None = None

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last = exc
        if self.on_failure is not None:
            self.on_failure(exc)
        if self.failures > self.max_retries:
            raise GaveUp(self.failures, exc)
        self.wait(min(self.max_backoff_s, self.backoff_s * 2 ** (self.failures - 1)))

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` unless stopped first (then ``Stopped``)."""
        if self.stop.wait(max(0.0, seconds)):
            raise Stopped

    def progress(self) -> None:
        self.failures = 0
