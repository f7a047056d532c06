"""Fault injection and network shaping: injected errors, dropped connections, cut responses, bandwidth caps.

A :class:`Fault` answers the next ``times`` matching requests instead of the real route: with an HTTP status
(optionally with ``Retry-After``), by dropping the connection mid-request without any response, or by serving the
real response but closing the connection after ``truncate_response_at`` body bytes. A :class:`Throttle` paces a
body so it stays under the server's ``bandwidth_bytes_per_s``; the server's ``latency_s`` is slept by the request
handler before each request.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CHUNK = 256 * 1024
"""Bytes read or written at a time when not throttled (and read before a dropped connection of unknown size)."""


@dataclass
class Fault:
    """An injected fault applied to the next ``remaining`` matching requests.

    Attributes:
        method: HTTP method to match (``None`` matches any).
        path_regex: Regex searched in the URL-decoded path, without query (``None`` matches any).
        status: Status code to answer instead of the real response.
        retry_after: ``Retry-After`` header value (seconds) sent with ``status``.
        drop: Close the connection mid-request, without any response.
        truncate_response_at: Serve the real response but close after this many body bytes.
        message: Error message (body ``error`` and ``X-Error-Message``).
        headers: Extra response headers.
        remaining: Number of matching requests still to be faulted.
        hits: Number of requests faulted so far.
    """

    method: str | None
    path_regex: str | None
    status: int | None
    retry_after: float | None
    drop: bool
    truncate_response_at: int | None
    message: str
    headers: dict[str, str]
    remaining: int
    hits: int = 0

    def __post_init__(self) -> None:
        if self.status is None and not self.drop and self.truncate_response_at is None:
            raise ValueError("A fault needs `status`, `drop=True` or `truncate_response_at`.")

    def matches(self, method: str, path: str) -> bool:
        """Tells whether this fault applies to a request.

        Args:
            method: The request's HTTP method.
            path: The request's URL-decoded path, without query.

        Returns:
            ``True`` if the fault has uses left and its method and path regex match.
        """
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_regex is None or re.search(self.path_regex, path) is not None

    def response_headers(self) -> dict[str, str]:
        """Returns the headers sent with a ``status`` fault: ``headers`` plus ``Retry-After`` when set."""
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["Retry-After"] = str(int(self.retry_after))
        return headers


class FaultInjector:
    """The pending faults of one server (thread-safe)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        """Queues ``fault`` after the pending ones and returns it."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """Consumes one use of the first pending fault matching a request.

        Args:
            method: The request's HTTP method.
            path: The request's URL-decoded path, without query.

        Returns:
            The fault to apply (removed once used up), or ``None``.
        """
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    fault.hits += 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Removes every pending fault."""
        with self._lock:
            self._faults.clear()


class Throttle:
    """Paces one byte stream so it does not exceed a bandwidth cap.

    Args:
        rate: Returns the current cap in bytes per second (``None`` or 0: unlimited); read at every call, so a
            cap changed mid-stream applies at once. Pacing counts from the creation of the throttle.
    """

    def __init__(self, rate: Callable[[], float | None]) -> None:
        self._rate = rate
        self._start = time.monotonic()
        self._sent = 0

    def pace(self, nbytes: int) -> None:
        """Accounts for ``nbytes`` and sleeps as needed to stay under the cap."""
        rate = self._rate()
        self._sent += nbytes
        if not rate:
            return
        ahead = self._sent / float(rate) - (time.monotonic() - self._start)
        if ahead > 0:
            time.sleep(ahead)

    def chunk_size(self) -> int:
        """Returns the chunk size to use: smaller chunks when throttled, so pacing is smooth."""
        rate = self._rate()
        return max(1024, min(CHUNK, int(rate // 20))) if rate else CHUNK
