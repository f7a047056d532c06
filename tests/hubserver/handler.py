"""HTTP plumbing: the threaded HTTP/1.1 server and its request handler.

For each request the handler sleeps the server's ``latency_s``, applies an injected fault if one matches,
authenticates the caller, dispatches to :mod:`.routes`, logs ``(method, path, status)`` in the server's stats,
then streams the response under the bandwidth cap (cut short for a ``truncate_response_at`` fault).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import routes
from .faults import CHUNK, Throttle
from .messages import BodyReader, HubHTTPError, Request, Response

if TYPE_CHECKING:
    from .server import HubServer

_LOG = logging.getLogger(__name__)


class RequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive request handler answering for the owning :class:`~.server.HubServer`."""

    protocol_version = "HTTP/1.1"
    server_version = "HubServerTestDouble/1.0"
    timeout = 60
    # Headers and body go out in separate sends; with Nagle on, the client's delayed ACK adds ~40 ms
    # to every request, which would swamp the injected latency of the benchmarks.
    disable_nagle_algorithm = True

    @property
    def hub(self) -> HubServer:
        """The owning server."""
        return self.server.hub  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)  # type: ignore[attr-defined]

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        _LOG.debug("hub-server %s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        hub = self.hub
        split = urlsplit(self.path)
        raw_path, decoded_path = split.path, unquote(split.path)
        query = parse_qs(split.query, keep_blank_values=True)
        body = BodyReader(self.rfile, self.headers, Throttle(lambda: hub.bandwidth_bytes_per_s))
        if hub.latency_s > 0:
            time.sleep(hub.latency_s)
        fault = hub.faults.take(self.command, decoded_path)
        if fault is not None and fault.drop:
            hub.stats.record(self.command, decoded_path, 0)  # log first: the client reacts as soon as we close
            self._drop(body)
            return
        try:
            if fault is not None and fault.status is not None:
                body.drain()
                raise HubHTTPError(fault.status, fault.message, headers=fault.response_headers())
            user = hub.accounts.authenticate(self.headers.get("Authorization"))
            response = routes.dispatch(hub, Request(self.command, raw_path, query, self.headers, body, user))
            body.drain()
        except HubHTTPError as err:
            response = err.to_response()
            try:
                body.drain()  # answer errors on a clean keep-alive connection
            except (ConnectionError, TimeoutError):
                self.close_connection = True
        except (ConnectionError, TimeoutError) as exc:
            _LOG.debug("hub-server connection error on %s %s: %s", self.command, decoded_path, exc)
            self.close_connection = True
            hub.stats.record(self.command, decoded_path, 0)
            return
        except Exception as exc:  # pragma: no cover - a server bug must surface as a 500, not a hang
            _LOG.exception("hub-server internal error on %s %s", self.command, decoded_path)
            response = HubHTTPError(500, f"Internal test-server error: {exc!r}").to_response()
        trace = self.headers.get("X-Amzn-Trace-Id")
        if trace:
            response.headers.setdefault("X-Request-Id", trace)
        hub.stats.record(self.command, decoded_path, response.status)  # before sending: no race with the client
        self._send(response, fault.truncate_response_at if fault is not None else None)

    def _drop(self, body: BodyReader) -> None:
        """Reads part of the request body then closes the socket without answering."""
        half = (body.declared_length or 0) // 2 if body.declared_length is not None else CHUNK
        try:
            for _ in body.iter_chunks(limit=half):
                pass
        except (ConnectionError, OSError):
            pass
        self._abort()

    def _abort(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, response: Response, truncate_at: int | None) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(response.length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            if truncate_at is not None:
                self._abort()
            return
        hub = self.hub
        throttle = Throttle(lambda: hub.bandwidth_bytes_per_s)
        limit = response.length if truncate_at is None else min(truncate_at, response.length)
        sent = 0
        try:
            for chunk in self._body_chunks(response, throttle):
                chunk = chunk[: limit - sent]
                if not chunk:
                    break
                if response.is_download:
                    hub.stats.add_downloaded(len(chunk))  # counted before the client can see the bytes
                self.wfile.write(chunk)
                sent += len(chunk)
                throttle.pace(len(chunk))
            self.wfile.flush()
        except OSError as exc:
            _LOG.debug("hub-server client went away while sending: %s", exc)
            self.close_connection = True
        if truncate_at is not None and sent < response.length:
            self._abort()

    @staticmethod
    def _body_chunks(response: Response, throttle: Throttle) -> Iterator[bytes]:
        if response.file is None:
            view, size = memoryview(response.body), throttle.chunk_size()
            for start in range(0, len(view), size):
                yield bytes(view[start : start + size])
            return
        path, offset, length = response.file
        with open(path, "rb") as fh:
            fh.seek(offset)
            remaining = length
            while remaining > 0:
                data = fh.read(min(remaining, throttle.chunk_size()))
                if not data:
                    break
                remaining -= len(data)
                yield data


class ThreadedHTTPServer(ThreadingHTTPServer):
    """A thread per connection; keeps track of open connections so that stopping can close them.

    Args:
        address: ``(host, port)`` to bind (port 0: a free one).
        hub: The :class:`~.server.HubServer` the handlers answer for.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], hub: HubServer) -> None:
        self.hub = hub
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, RequestHandler)

    def track(self, conn: socket.socket, *, add: bool) -> None:
        """Adds or removes an open connection."""
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        """Shuts down every connection still open (keep-alive clients would otherwise hold their thread)."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _LOG.debug("hub-server: error while handling a request from %s", client_address, exc_info=True)
