"""One WebSocket connection to a provider, with low-level errors translated at the boundary.

websocket-client raises a zoo of exceptions (its own, ``OSError``, ``ssl.SSLError``, ...). The
session should only ever see the typed errors of ``livetx_widgets.errors``, so every call into
websocket-client goes through ``_translate`` (the pattern of httpcore's ``map_exceptions``).

Receiving blocks without a timeout: the session interrupts a blocked ``recv`` by calling
``abort()`` from another thread, so no thread polls.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import websocket

from ..errors import ConnectError, ConnectionLostError, LivetxError
from ..providers.base import ConnectRequest, ProviderCodec

CLOSE_SEND_S = 1.0  # longest the close frame may wait for room in the send buffer


@dataclass(frozen=True, slots=True)
class Frame:
    """A received frame: text, or a close (``code``/``reason``), or the end of the stream."""

    text: str | None = None
    closed: bool = False
    code: int | None = None
    reason: str = ""


@contextlib.contextmanager
def _translate(what: str, safe_url: str) -> Iterator[None]:
    try:
        yield
    except (LivetxError, websocket.WebSocketBadStatusException):
        raise  # a refused upgrade is mapped by the codec, which knows the provider's codes
    except websocket.WebSocketTimeoutException as exc:
        raise ConnectError(
            f"Timed out while {what} {safe_url}. Check the URL and your network; "
            "the service may be unreachable from this machine."
        ) from exc
    except (websocket.WebSocketAddressException, socket.gaierror) as exc:
        raise ConnectError(
            f"Cannot resolve the host of {safe_url}. Check the URL and your network."
        ) from exc
    except ssl.SSLError as exc:
        raise ConnectError(f"TLS failed while {what} {safe_url}: {exc.reason}.") from exc
    except ConnectionRefusedError as exc:
        raise ConnectError(
            f"Connection refused by {safe_url}. Is the server running on that port?"
        ) from exc
    except (websocket.WebSocketException, OSError) as exc:
        raise ConnectionLostError(
            f"The connection to {safe_url} failed while {what}: {type(exc).__name__}."
        ) from exc


class Opening:
    """One connection attempt that another thread can abort at any step.

    Why: ``stop(timeout)`` must be bounded while a connection is still being opened, and
    websocket-client's own ``connect`` holds its socket where no other thread can reach it
    until the upgrade has succeeded. So the session opens the TCP (and TLS) socket itself,
    registers it here, and hands it to websocket-client for the upgrade; ``abort()`` shuts it
    down, which wakes a thread blocked in ``connect``, the TLS handshake or the upgrade.

    A DNS lookup cannot be interrupted by any Python API. It runs in a short-lived daemon
    thread that holds no socket (``livetx-resolve``); an aborted attempt stops waiting for it,
    and it ends by itself when the resolver answers or times out.
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._sock: socket.socket | None = None
        self._ws: websocket.WebSocket | None = None
        self.aborted = False

    def abort(self) -> None:
        """Cancel the attempt from another thread: it ends with a ``ConnectError``."""
        with self._cv:
            self.aborted = True
        self.close()

    def close(self) -> None:
        """Release whatever socket the attempt holds (its own failure path, or an abort)."""
        with self._cv:
            sock, self._sock = self._sock, None
            ws, self._ws = self._ws, None
            self._cv.notify_all()
        if sock is not None:
            _shutdown(sock)
        if ws is not None:  # a proxied connect: its socket is websocket-client's own
            with contextlib.suppress(Exception):
                ws.shutdown()

    def release(self) -> None:
        """The upgrade succeeded: the socket now belongs to the ``Connection``."""
        with self._cv:
            self._sock = self._ws = None

    def _check(self, safe_url: str) -> None:
        if self.aborted:
            raise ConnectError(f"Connecting to {safe_url} was cancelled (the session stopped).")

    def resolve(self, host: str, port: int, deadline: float, safe_url: str) -> list:
        """``getaddrinfo`` that gives up at ``deadline`` or when the attempt is aborted."""
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
            literal = True
        except OSError:
            literal = False
        if literal or host == "localhost":
            return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        result: dict[str, Any] = {}

        def lookup() -> None:
            try:
                result["ok"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                result["error"] = exc
            with self._cv:
                self._cv.notify_all()

        threading.Thread(target=lookup, name="livetx-resolve", daemon=True).start()
        with self._cv:
            self._cv.wait_for(
                lambda: self.aborted or result, timeout=max(0.0, deadline - time.monotonic())
            )
        self._check(safe_url)
        if "error" in result:
            raise result["error"]
        if "ok" not in result:
            raise websocket.WebSocketTimeoutException("DNS lookup timed out")
        return result["ok"]

    def open_socket(self, url: str, deadline: float, safe_url: str) -> socket.socket:
        """TCP (and TLS for ``wss://``) to the URL's host, abortable throughout."""
        host, port, _resource, secure = websocket._url.parse_url(url)
        last: OSError | None = None
        for family, kind, proto, _name, addr in self.resolve(host, port, deadline, safe_url):
            sock = socket.socket(family, kind, proto)
            with self._cv:
                if self.aborted:
                    sock.close()
                    break
                self._sock = sock
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                sock.connect(addr)
                if secure:
                    context = ssl.create_default_context()
                    tls = context.wrap_socket(
                        sock, server_hostname=host, do_handshake_on_connect=False
                    )
                    with self._cv:
                        self._sock = tls
                    tls.settimeout(max(0.01, deadline - time.monotonic()))
                    tls.do_handshake()
                    sock = tls
                return sock
            except OSError as exc:
                last = exc
                with self._cv:
                    self._sock = None
                sock.close()
                self._check(safe_url)
        self._check(safe_url)
        raise last or ConnectError(f"Cannot resolve the host of {safe_url}.")


class Connection:
    """A connected provider WebSocket. Create with ``Connection.open``."""

    def __init__(self, ws: websocket.WebSocket, codec: ProviderCodec, safe_url: str):
        self._ws = ws
        self.codec = codec
        self.safe_url = safe_url
        self._closed = threading.Event()

    @classmethod
    def open(
        cls,
        codec: ProviderCodec,
        request: ConnectRequest,
        *,
        timeout: float = 10.0,
        opening: Opening | None = None,
    ) -> Connection:
        """Open the socket and perform the upgrade within ``timeout``. Raises typed errors only.

        ``opening`` lets another thread abort the attempt (see ``Opening``); it ends with a
        ``ConnectError`` then.
        """
        opening = opening or Opening()
        ws = websocket.WebSocket(enable_multithread=True, skip_utf8_validation=True)
        safe_url = request.safe_url
        deadline = time.monotonic() + timeout
        try:
            with _translate("connecting to", safe_url):
                options: dict[str, Any] = {}
                if _proxied(request.url):
                    with opening._cv:
                        opening._ws = ws
                else:
                    options["socket"] = opening.open_socket(request.url, deadline, safe_url)
                ws.connect(
                    request.url,
                    header=[f"{k}: {v}" for k, v in request.headers.items()],
                    subprotocols=list(request.subprotocols) or None,
                    timeout=max(0.01, deadline - time.monotonic()),
                    suppress_origin=True,
                    **options,
                )
        except websocket.WebSocketBadStatusException as exc:
            opening.close()
            ws.shutdown()
            body = (exc.resp_body or b"").decode("utf-8", "replace")
            headers = {k.lower(): v for k, v in (exc.resp_headers or {}).items()}
            raise codec.handshake_error(exc.status_code, headers, body) from None
        except LivetxError:
            opening.close()  # releases a socket the failed attempt still holds
            ws.shutdown()
            opening._check(safe_url)  # cancelled: say so, not what the abort caused
            raise
        opening.release()
        if opening.aborted:  # aborted just as the upgrade succeeded
            ws.shutdown()
            opening._check(safe_url)
        ws.settimeout(None)  # recv blocks; abort() from another thread interrupts it
        return cls(ws, codec, safe_url)

    @property
    def response_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in (self._ws.getheaders() or {}).items()}

    def send_audio(self, pcm: bytes) -> None:
        with _translate("sending audio to", self.safe_url):
            self._ws.send_binary(pcm)

    def send_text(self, text: str) -> None:
        with _translate("sending a message to", self.safe_url):
            self._ws.send(text)

    def recv(self) -> Frame:
        """Block until the next text frame or close. Raises ConnectionLostError on a drop."""
        while True:
            with _translate("receiving from", self.safe_url):
                try:
                    opcode, frame = self._ws.recv_data_frame(control_frame=False)
                except websocket.WebSocketConnectionClosedException:
                    if self._closed.is_set():
                        return Frame(closed=True)
                    raise
            if opcode == websocket.ABNF.OPCODE_TEXT:
                return Frame(text=frame.data.decode("utf-8", "replace"))
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code, reason = _parse_close(frame.data)
                return Frame(closed=True, code=code, reason=reason)
            # Binary frames are not part of either protocol: ignore them.

    def close(self) -> None:
        """Send a normal close frame (if still possible) and release the socket."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(Exception):
            # A peer that stopped reading must not hold the close: give the frame a second.
            self._ws.sock.settimeout(CLOSE_SEND_S)
            self._ws.send_close()
        self.abort()

    def abort(self) -> None:
        """Drop the TCP connection now; a thread blocked in ``recv`` wakes up."""
        self._closed.set()
        sock = self._ws.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._ws.shutdown()


def _shutdown(sock: socket.socket) -> None:
    """Wake any thread blocked on ``sock`` (connect, handshake, recv), then release it."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def _proxied(url: str) -> bool:
    """Whether websocket-client would go through a proxy from the environment for ``url``.

    Then its own connect is used (it knows the tunnelling); only the upgrade is abortable.
    """
    host, _port, _resource, secure = websocket._url.parse_url(url)
    return websocket._url.get_proxy_info(host, secure)[0] is not None


def _parse_close(data: bytes) -> tuple[int | None, str]:
    if len(data) < 2:
        return None, ""
    (code,) = struct.unpack("!H", data[:2])
    return code, data[2:].decode("utf-8", "replace")
