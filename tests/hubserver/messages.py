"""The request and response objects that route handlers work with, and errors answered the way the Hub does."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .faults import Throttle

if TYPE_CHECKING:
    from .accounts import User

MAX_JSON_BODY = 512 * 1024 * 1024
"""Largest body read into memory (JSON, NDJSON commit payloads); 413 above."""


@dataclass
class Response:
    """A response to send: either an in-memory body or a slice of a blob file.

    Attributes:
        status: HTTP status code.
        headers: Response headers (``Content-Length`` is added when sending).
        body: In-memory body (when ``file`` is ``None``).
        file: ``(path, offset, length)`` of a file slice to stream as the body.
        is_download: Whether the body bytes count as downloaded file content (``/resolve``).
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: tuple[Path, int, int] | None = None
    is_download: bool = False

    @classmethod
    def json(cls, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """Builds a JSON response.

        Args:
            data: The JSON-serializable body.
            status: HTTP status code.
            headers: Extra headers (may override ``Content-Type``).

        Returns:
            The response.
        """
        return cls(
            status=status,
            headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
            body=json.dumps(data).encode(),
        )

    @property
    def length(self) -> int:
        """Length of the body in bytes."""
        return self.file[2] if self.file is not None else len(self.body)


class HubHTTPError(Exception):
    """An HTTP error answered the way the Hub does: a JSON ``{"error": ...}`` body and ``X-Error-*`` headers.

    The client picks its exception class from the status and ``X-Error-Code``.

    Args:
        status: HTTP status code.
        message: Error message (body ``error`` and ``X-Error-Message``).
        code: ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``), if any.
        headers: Extra response headers.
        extra: Extra fields of the JSON body.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def to_response(self) -> Response:
        """Renders the error as a response."""
        headers = {"X-Error-Message": header_safe(self.message), **self.headers}
        if self.code is not None:
            headers["X-Error-Code"] = self.code
        return Response.json({"error": self.message, **self.extra}, status=self.status, headers=headers)


class BodyReader:
    """Reads a request body (``Content-Length`` or chunked), throttled, at most once.

    Args:
        rfile: The connection's input stream, positioned after the request headers.
        headers: The request headers.
        throttle: Paces the reads.

    Attributes:
        declared_length: The ``Content-Length`` (0 if absent), or ``None`` for a chunked body.
        consumed: Whether the body has been (or is being) read.
    """

    def __init__(self, rfile: BinaryIO, headers: HTTPMessage, throttle: Throttle) -> None:
        self._rfile = rfile
        self._throttle = throttle
        chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        length = headers.get("Content-Length")
        self.declared_length: int | None = None if chunked else int(length or 0)
        self.consumed = False

    def iter_chunks(self, limit: int | None = None) -> Iterator[bytes]:
        """Yields the body in chunks.

        Args:
            limit: Stop after this many bytes overall (``None``: the whole body).

        Yields:
            Non-empty chunks of the body.

        Raises:
            ConnectionError: If the client closes the connection before the end of the body.
        """
        self.consumed = True
        budget = limit
        source = self._iter_chunked() if self.declared_length is None else self._iter_fixed(self.declared_length)
        for chunk in source:
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            if chunk:
                self._throttle.pace(len(chunk))
                yield chunk
            if budget is not None and budget <= 0:
                return

    def _iter_fixed(self, length: int) -> Iterator[bytes]:
        remaining = length
        while remaining > 0:
            data = self._rfile.read(min(remaining, self._throttle.chunk_size()))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(data)
            yield data

    def _iter_chunked(self) -> Iterator[bytes]:
        while True:
            line = self._rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield from self._iter_fixed(size)
            self._rfile.readline(65537)

    def read(self, max_size: int = MAX_JSON_BODY) -> bytes:
        """Reads the whole body into memory.

        Args:
            max_size: Largest accepted body.

        Returns:
            The body.

        Raises:
            HubHTTPError: 413 if the body is larger than ``max_size``.
        """
        buf = io.BytesIO()
        for chunk in self.iter_chunks():
            buf.write(chunk)
            if buf.tell() > max_size:
                raise HubHTTPError(413, "Payload Too Large")
        return buf.getvalue()

    def drain(self) -> None:
        """Discards whatever is left of the body (keeps the keep-alive connection usable)."""
        if not self.consumed:
            for _ in self.iter_chunks():
                pass


@dataclass
class Request:
    """Everything a route handler needs about a request.

    Attributes:
        method: HTTP method.
        path: Request path, still URL-quoted, without query.
        query: Parsed query string (blank values kept).
        headers: Request headers.
        body: Reader of the request body.
        user: The authenticated user, or ``None`` for an anonymous request.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: HTTPMessage
    body: BodyReader
    user: User | None

    def param(self, name: str) -> str | None:
        """Returns the first value of query parameter ``name``, or ``None``."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """Parses the body as JSON (an empty body is ``{}``).

        Returns:
            The parsed body.

        Raises:
            HubHTTPError: 400 on invalid JSON.
        """
        raw = self.body.read()
        try:
            return json.loads(raw or b"{}")
        except ValueError as exc:
            raise HubHTTPError(400, f"Invalid JSON body: {exc}") from exc


def truthy(value: str | None) -> bool:
    """Parses a query-string boolean (``1``, ``true``, ``yes``, ``on``; case-insensitive)."""
    return value is not None and value.strip().lower() in {"1", "true", "yes", "on"}


def header_safe(text: str) -> str:
    """Makes a message usable as an HTTP header value (single line, latin-1, at most 1000 characters)."""
    text = " ".join(text.split())
    return text.encode("latin-1", "replace").decode("latin-1")[:1000]
