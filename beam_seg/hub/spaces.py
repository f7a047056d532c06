"""Spaces on today's Hub: the SDK and the hardware a Space runs on, settled before anything is uploaded.

Since July 2026 the Hub answers HTTP 402 when a free account asks for a Gradio or Docker Space on ``cpu-basic``;
free accounts may host up to two ZeroGPU Spaces (``zero-a10g``), and Static Spaces are free for everyone.
:func:`ensure_space` creates (or finds) the Space with the SDK and hardware asked for; with ``hardware="auto"`` it
asks for ``cpu-basic`` and, on a 402, for ZeroGPU, saying so in one log line. When no option works, the
:class:`SpaceHostingError` says which options exist for the account.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from beam_seg.hub.errors import NotFoundError, PaymentRequiredError, hub_call
from beam_seg.hub.retry import RetryPolicy, call_with_retry, status_of

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = [
    "AUTO",
    "CPU_BASIC",
    "SDKS",
    "ZERO_GPU",
    "SpaceHostingError",
    "SpaceSetup",
    "ensure_space",
    "space_stage",
]

logger = logging.getLogger(__name__)

SDKS: tuple[str, ...] = ("gradio", "static")
AUTO = "auto"
CPU_BASIC = "cpu-basic"
ZERO_GPU = "zero-a10g"
# What a free account can do, for the one line that says so.
FREE_OPTIONS = (
    "--space_sdk static (free for everyone, runs the model in the browser) or --space_hardware zero-a10g (free "
    "accounts may host up to 2 ZeroGPU Spaces); cpu-basic and other hardware for a Gradio Space need a PRO "
    "subscription or a payment method"
)


class SpaceHostingError(PaymentRequiredError):
    """The account may not host the Space as asked (HTTP 402 for every hardware tried); the message lists options."""


@dataclasses.dataclass(frozen=True)
class SpaceSetup:
    """The Space as :func:`ensure_space` left it.

    Attributes:
        url: The Space's page.
        sdk: ``gradio`` or ``static``.
        hardware: The hardware flavour requested for it (``None`` for a static Space).
        created: Whether this call created it.
        note: Why the hardware differs from the one asked first (e.g. cpu-basic refused with a 402), if it does.
    """

    url: str
    sdk: str
    hardware: str | None
    created: bool
    note: str | None = None


def _candidates(hardware: str) -> tuple[str, ...]:
    return (CPU_BASIC, ZERO_GPU) if hardware == AUTO else (hardware,)


def _create(
    api: HfApi, *, repo_id: str, sdk: str, hardware: str | None, private: bool, policy: RetryPolicy | None
) -> str | None:
    """Creates the Space; ``None`` if it exists already. Raises :class:`PaymentRequiredError` on a 402."""
    from huggingface_hub.errors import HfHubHTTPError

    kwargs = {"space_sdk": sdk, **({"space_hardware": hardware} if hardware else {})}
    with hub_call("creating", repo_id=repo_id, repo_type="space", endpoint=api.endpoint):
        try:
            return str(
                call_with_retry(
                    lambda: api.create_repo(repo_id, repo_type="space", private=private, exist_ok=False, **kwargs),
                    what=f"create_repo space {repo_id} ({sdk}, {hardware or 'no hardware'})",
                    policy=policy,
                )
            )
        except HfHubHTTPError as e:
            if status_of(e) == 409:
                return None
            raise


def _existing(api: HfApi, repo_id: str, policy: RetryPolicy | None) -> tuple[str, str | None] | None:
    """``(url, requested hardware)`` of an existing Space, or ``None`` if there is none."""
    try:
        with hub_call("reading", repo_id=repo_id, repo_type="space", endpoint=api.endpoint):
            runtime = call_with_retry(
                lambda: api.get_space_runtime(repo_id), what=f"get_space_runtime {repo_id}", policy=policy
            )
    except NotFoundError:
        return None
    url = f"{api.endpoint.rstrip('/')}/spaces/{repo_id}"
    return url, runtime.requested_hardware or runtime.hardware


def _request(api: HfApi, *, repo_id: str, hardware: str, policy: RetryPolicy | None) -> None:
    with hub_call("requesting hardware for", repo_id=repo_id, repo_type="space", endpoint=api.endpoint):
        call_with_retry(
            lambda: api.request_space_hardware(repo_id, hardware),
            what=f"request_space_hardware {repo_id} {hardware}",
            policy=policy,
        )


def _refused(repo_id: str, tried: list[tuple[str, PaymentRequiredError]]) -> SpaceHostingError:
    said = "; ".join(f"{hardware}: {error.server_message}" for hardware, error in tried)
    return SpaceHostingError(
        f"cannot host Gradio Space {repo_id}: the Hub answered HTTP 402 for "
        f"{' and '.join(hardware for hardware, _ in tried)} ({said}); with a free account use {FREE_OPTIONS}",
        server_message=said,
        repo_id=repo_id,
    )


def ensure_space(
    api: HfApi,
    *,
    repo_id: str,
    sdk: str,
    hardware: str = AUTO,
    private: bool = False,
    policy: RetryPolicy | None = None,
) -> SpaceSetup:
    """Creates the Space, or finds it, on hardware the account may use.

    A new Gradio Space is created on ``hardware`` (``auto``: ``cpu-basic``, else ZeroGPU after a 402). An existing
    one keeps its hardware under ``auto``, and is moved to an explicit ``hardware`` that differs. A static Space has
    no hardware.

    Args:
        api: An authenticated client.
        repo_id: ``user/name`` of the Space.
        sdk: ``gradio`` or ``static``.
        hardware: ``auto``, ``cpu-basic``, ``zero-a10g`` or any Hub flavour (ignored for ``static``).
        private: Create it private.
        policy: Retry settings of the Hub calls.

    Raises:
        SpaceHostingError: every hardware tried was refused with a 402; the message lists the account's options.
        HubError: any other Hub or network failure, one line.
    """
    if sdk not in SDKS:
        raise ValueError(f"space sdk {sdk!r} must be one of {', '.join(SDKS)}")
    if sdk == "static":
        url = _create(api, repo_id=repo_id, sdk=sdk, hardware=None, private=private, policy=policy)
        return SpaceSetup(url or f"{api.endpoint.rstrip('/')}/spaces/{repo_id}", sdk, None, created=url is not None)
    tried: list[tuple[str, PaymentRequiredError]] = []
    existing = None
    for flavour in _candidates(hardware):
        try:
            url = _create(api, repo_id=repo_id, sdk=sdk, hardware=flavour, private=private, policy=policy)
        except PaymentRequiredError as e:
            existing = _existing(api, repo_id, policy)  # The Hub may answer 402 for a Space that exists.
            if existing is not None:
                break
            tried.append((flavour, e))
            continue
        if url is None:
            existing = _existing(api, repo_id, policy)
            break
        note = _note(tried, flavour)
        if note:
            logger.warning("%s", note.replace("this Space", f"Space {repo_id}"))
        return SpaceSetup(url, sdk, flavour, created=True, note=note)
    if existing is None:
        raise _refused(repo_id, tried)
    url, current = existing
    if hardware == AUTO and current is not None:
        return SpaceSetup(url, sdk, current, created=False)
    tried = []
    for flavour in _candidates(hardware):
        if flavour == current:
            return SpaceSetup(url, sdk, current, created=False)
        try:
            _request(api, repo_id=repo_id, hardware=flavour, policy=policy)
        except PaymentRequiredError as e:
            tried.append((flavour, e))
            continue
        note = _note(tried, flavour)
        if note:
            logger.warning("%s", note.replace("this Space", f"Space {repo_id}"))
        return SpaceSetup(url, sdk, flavour, created=False, note=note)
    raise _refused(repo_id, tried)


def _note(tried: list[tuple[str, PaymentRequiredError]], flavour: str) -> str | None:
    if not tried:
        return None
    refused = " and ".join(hardware for hardware, _ in tried)
    return (
        f"{refused} needs a PRO subscription for this Space (HTTP 402: {tried[0][1].server_message}); it runs on "
        f"{flavour} instead{' (ZeroGPU: predictions stay on the CPU)' if flavour == ZERO_GPU else ''}"
    )


def space_stage(api: HfApi, repo_id: str, policy: RetryPolicy | None = None) -> str:
    """The Space's runtime stage (``BUILDING``, ``RUNNING``, ``RUNTIME_ERROR``...), as the Hub reports it now."""
    with hub_call("reading", repo_id=repo_id, repo_type="space", endpoint=api.endpoint):
        runtime = call_with_retry(
            lambda: api.get_space_runtime(repo_id), what=f"get_space_runtime {repo_id}", policy=policy
        )
    return str(runtime.stage)
