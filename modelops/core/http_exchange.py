"""The TF Serving client's transport: a small pool of kept-alive HTTP/1.1 connections, shared by
the threads or greenlets of a process, and the request/response exchange written out by hand.

On this hop (a few hundred bytes each way) ``requests`` cost more than the model call itself
(about 2 ms per request against 0.5 ms here), and ``http.client`` a fifth of the frontend's CPU
per request. Apart from the client (tfserving_client.py), which only needs ``request()``.

Free of numpy and TensorFlow: the frontend image has neither.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

# A kept-alive connection the server has meanwhile closed fails like this on reuse.
_STALE = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected, http.client.BadStatusLine)
_MAX_LINE = 65536  # longest status or header line taken from a server


class Response:
    """What a transport returns: status, reason and the body, parsed on demand."""

    def __init__(self, status_code: int, reason: str, content: bytes) -> None:
        self.status_code, self.reason, self.content = status_code, reason, content

    def json(self) -> Any:
        return json.loads(self.content)


class KeepAliveSession:
    """``request()`` over a pool of persistent HTTP/1.1 connections.

    A connection is taken for one request and given back after it, so threads and greenlets
    alike reuse the same few; at most ``max_idle`` wait per host. A pooled connection that turns
    out closed by the server is dropped and the request sent again; a fresh connection that
    fails raises (refused: ConnectionError, slow: TimeoutError).

    The exchange is written out here rather than through ``http.client``, whose request building
    and email-parser header handling were a fifth of the frontend's CPU per request
    (docs/performance.md): the request leaves in one write, head and body together (two writes
    also let a server answer before the body arrived and then close), and the answer's head is
    split by hand. Bodies are read by Content-Length, chunked, or to the connection's close.
    """

    def __init__(self, max_idle: int = 16) -> None:
        self.max_idle = max_idle
        self._idle: dict[str, list[socket.socket]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def request(
        self,
        method: str,
        url: str,
        data: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] = (2.0, 10.0),
    ) -> Response:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        body = data.encode() if isinstance(data, str) else (data or b"")
        lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if data is not None:
            lines.append(f"Content-Length: {len(body)}")
        message = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body
        while True:
            sock, fresh = self._take(parts, timeout)
            try:
                sock.sendall(message)
                answer, reusable = _read_response(sock, method)
            except ValueError:  # a length or chunk size that is not a number
                sock.close()
                raise http.client.HTTPException(f"malformed response to {method} {path}") from None
            except (OSError, http.client.HTTPException) as exc:
                sock.close()
                if fresh or not isinstance(exc, _STALE):
                    raise
                continue
            self._give_back(parts.netloc, sock, reusable)
            return answer

    def _take(self, parts: SplitResult, timeout: tuple[float, float]) -> tuple[socket.socket, bool]:
        connect_timeout, read_timeout = timeout
        with self._lock:
            idle = self._idle.get(parts.netloc)
            sock = idle.pop() if idle else None
        if sock is not None:
            sock.settimeout(read_timeout)
            return sock, False
        port = parts.port or (443 if parts.scheme == "https" else 80)
        sock = socket.create_connection((parts.hostname, port), timeout=connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.scheme == "https":
            self._tls = self._tls or ssl.create_default_context()
            sock = self._tls.wrap_socket(sock, server_hostname=parts.hostname)
        sock.settimeout(read_timeout)
        return sock, True

    def _give_back(self, netloc: str, sock: socket.socket, reusable: bool) -> None:
        with self._lock:
            idle = self._idle.setdefault(netloc, [])
            if reusable and len(idle) < self.max_idle:
                idle.append(sock)
                return
        sock.close()


class _Reader:
    """Buffered reads from a socket; a close before the expected bytes is RemoteDisconnected."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def _more(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > _MAX_LINE or not self._more():
                raise http.client.RemoteDisconnected("the connection closed inside a response head")
        line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
        return line

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._more():
                raise http.client.IncompleteRead(self.buffer, size - len(self.buffer))
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def to_close(self) -> bytes:
        while self._more():
            pass
        return self.buffer


def _read_response(sock: socket.socket, method: str) -> tuple[Response, bool]:
    """The response to the request just sent, and whether the connection can carry another."""
    reader = _Reader(sock)
    while True:
        version, _, rest = reader.line().decode("latin-1").partition(" ")
        code, _, reason = rest.partition(" ")
        if not (version.startswith("HTTP/1.") and code.isdigit()):
            raise http.client.BadStatusLine(f"{version} {rest}"[:80])
        fields = {}
        while line := reader.line():
            name, _, value = line.decode("latin-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        status = int(code)
        if not 100 <= status < 200:  # informational answers (100 Continue) precede the real one
            break
    reusable = version == "HTTP/1.1" and "close" not in fields.get("connection", "").lower()
    if method == "HEAD" or status in (204, 304):
        content = b""
    elif "chunked" in fields.get("transfer-encoding", "").lower():
        content = _read_chunked(reader)
    elif "content-length" in fields:
        content = reader.exactly(int(fields["content-length"]))
    else:
        content, reusable = reader.to_close(), False
    return Response(status, reason, content), reusable and not reader.buffer


def _read_chunked(reader: _Reader) -> bytes:
    chunks = []
    while size := int(reader.line().split(b";", 1)[0], 16):
        chunks.append(reader.exactly(size))
        reader.exactly(2)  # the CRLF after each chunk
    while reader.line():  # trailer fields, up to the empty line
        pass
    return b"".join(chunks)
