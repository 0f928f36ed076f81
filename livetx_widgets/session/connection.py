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
from collections.abc import Iterator
from dataclasses import dataclass

import websocket

from ..errors import ConnectError, ConnectionLostError, LivetxError
from ..providers.base import ConnectRequest, ProviderCodec


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


class Connection:
    """A connected provider WebSocket. Create with ``Connection.open``."""

    def __init__(self, ws: websocket.WebSocket, codec: ProviderCodec, safe_url: str):
        self._ws = ws
        self.codec = codec
        self.safe_url = safe_url
        self._closed = threading.Event()

    @classmethod
    def open(
        cls, codec: ProviderCodec, request: ConnectRequest, *, timeout: float = 10.0
    ) -> Connection:
        """Open the socket and perform the upgrade. Raises typed errors only."""
        ws = websocket.WebSocket(enable_multithread=True, skip_utf8_validation=True)
        safe_url = request.safe_url
        try:
            with _translate("connecting to", safe_url):
                ws.connect(
                    request.url,
                    header=[f"{k}: {v}" for k, v in request.headers.items()],
                    subprotocols=list(request.subprotocols) or None,
                    timeout=timeout,
                    suppress_origin=True,
                )
        except websocket.WebSocketBadStatusException as exc:
            body = (exc.resp_body or b"").decode("utf-8", "replace")
            headers = {k.lower(): v for k, v in (exc.resp_headers or {}).items()}
            raise codec.handshake_error(exc.status_code, headers, body) from None
        except LivetxError:
            ws.shutdown()
            raise
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


def _parse_close(data: bytes) -> tuple[int | None, str]:
    if len(data) < 2:
        return None, ""
    (code,) = struct.unpack("!H", data[:2])
    return code, data[2:].decode("utf-8", "replace")
