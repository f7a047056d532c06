"""Bounded exponential backoff for the Hub calls ``huggingface_hub`` does not retry itself.

The client retries 408/429/5xx and dropped connections (honouring ``Retry-After``) on preupload, LFS batch/PUT/verify
and paginated listings; ``create_repo``, ``create_branch``, ``create_tag``, ``list_repo_refs``, ``repo_info`` and
``create_commit`` are single attempts. :func:`call_with_retry` wraps the idempotent ones; commits have their own
safe retry (:mod:`beam_seg.hub.commits`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "DEFAULT_RETRY",
    "RETRYABLE_STATUS",
    "RetryPolicy",
    "call_with_retry",
    "is_network_error",
    "retry_delay",
    "short_reason",
    "status_of",
]

logger = logging.getLogger(__name__)

RETRYABLE_STATUS: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for the calls ``huggingface_hub`` does not retry itself.

    Attributes:
        max_attempts: Attempts in total (the first one included).
        base_delay_s: Wait before the second attempt; doubled after each failure.
        max_delay_s: Cap of the exponential wait.
        max_retry_after_s: Cap of a server-requested ``Retry-After`` wait.
    """

    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0


DEFAULT_RETRY = RetryPolicy()


def status_of(exc: BaseException) -> int | None:
    """The HTTP status behind a client exception, if any."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def is_network_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a dropped or refused connection (the client's HTTP transport error)."""
    import httpx2

    return isinstance(exc, httpx2.TransportError)


def retry_delay(exc: BaseException, attempt: int, policy: RetryPolicy) -> float | None:
    """Seconds to wait before retrying after ``exc`` on attempt ``attempt`` (1-based), or ``None`` to give up.

    429/5xx/408 and network errors are retried; ``Retry-After: N`` (or a 429 ``RateLimit`` reset) is honoured,
    capped at ``policy.max_retry_after_s``; anything else (401, 403, 404, 409, 412, bad requests) is final.
    """
    if attempt >= policy.max_attempts:
        return None
    backoff = min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1))
    if is_network_error(exc):
        return backoff
    status = status_of(exc)
    if status not in RETRYABLE_STATUS:
        return None
    headers = exc.response.headers  # type: ignore[attr-defined]
    requested: float | None = None
    value = (headers.get("Retry-After") or "").strip()
    if value.isdigit():
        requested = float(value)
    elif status == 429:
        from huggingface_hub.utils import parse_ratelimit_headers

        info = parse_ratelimit_headers(headers)
        if info is not None and info.remaining == 0:
            requested = float(info.reset_in_seconds)
    return backoff if requested is None else min(requested, policy.max_retry_after_s)


def call_with_retry(
    fn: Callable[[], _T],
    *,
    what: str,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    """Calls ``fn`` until it succeeds or fails for good; only for idempotent calls the client does not retry.

    Args:
        fn: The call (no arguments).
        what: What the call does, for the log (e.g. ``"create_repo user/name"``).
        policy: Backoff settings (default :data:`DEFAULT_RETRY`, read at call time).
        sleep: Injected in tests.

    Raises:
        Exception: The last error, unchanged (translate it with :func:`hub_call`).
    """
    policy = policy or DEFAULT_RETRY
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            delay = retry_delay(exc, attempt, policy)
            if delay is None:
                raise
            logger.warning(
                "%s failed (%s); retrying in %.1fs (attempt %d of %d)",
                what,
                short_reason(exc),
                delay,
                attempt + 1,
                policy.max_attempts,
            )
            sleep(delay)


def short_reason(exc: BaseException) -> str:
    """``HTTP 503`` or the exception's type name, for log lines."""
    status = status_of(exc)
    return f"HTTP {status}" if status else type(exc).__name__
