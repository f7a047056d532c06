"""Space hardware and runtime, as the Hub answers them since July 2026 (free accounts pay for cpu-basic).

Rules (``User.plan``):

* ``pro`` accounts (the default): any SDK on any hardware flavour.
* ``free`` accounts: Static Spaces are free; a Gradio or Docker (or Streamlit) Space may only run on ZeroGPU
  (``zero-a10g``), at most :data:`FREE_ZERO_GPU_SPACES` of them. Anything else is a **402** with the Hub's message
  (:data:`FREE_CPU_MESSAGE`). A Space created without a ``hardware`` asks for ``cpu-basic``.

Runtime (``GET /api/spaces/{repo}/runtime``, what ``HfApi.get_space_runtime`` reads): the stage a Space would
reach with its ``main``: ``NO_APP_FILE`` before its first commit with the app file; a Gradio/Docker Space on
ZeroGPU whose app file defines no ``@spaces.GPU`` function is a ``RUNTIME_ERROR`` (ZeroGPU refuses to start it);
everything else ``RUNNING``. Nothing is built or run: the stage is a function of the files.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .accounts import readable_repo, writable_repo
from .content import parse_front_matter
from .messages import HubHTTPError, Request, Response

if TYPE_CHECKING:
    from .accounts import User
    from .server import HubServer
    from .storage import Repo

CPU_BASIC = "cpu-basic"
ZERO_GPU = "zero-a10g"
FREE_ZERO_GPU_SPACES = 2
FREE_CPU_MESSAGE = (
    "Static Spaces are free for everyone, but hosting Gradio and Docker Spaces on free cpu-basic requires a PRO "
    "subscription"
)
FREE_GPU_MESSAGE = "Upgraded hardware requires a PRO subscription or a payment method on file"
FREE_ZERO_GPU_LIMIT_MESSAGE = (
    f"Free accounts can host up to {FREE_ZERO_GPU_SPACES} ZeroGPU Spaces; upgrade to PRO to host more"
)
ZERO_GPU_MISSING_FUNCTION = (
    "No @spaces.GPU function detected during startup: ZeroGPU Spaces need at least one function decorated with "
    "@spaces.GPU"
)
_GPU_DECORATOR = re.compile(r"^\s*@spaces\.GPU\b", re.M)


def check_hardware(hub: HubServer, user: User, *, sdk: str | None, hardware: str, repo_id: str) -> None:
    """Raises the Hub's 402 when ``user``'s plan may not run a ``sdk`` Space on ``hardware`` (lock held)."""
    if user.plan != "free" or sdk == "static":
        return
    if hardware == ZERO_GPU:
        others = [
            r
            for r in hub.storage.repos.values()
            if r.repo_type == "space" and r.namespace == user.name and r.hardware == ZERO_GPU and r.repo_id != repo_id
        ]
        if len(others) >= FREE_ZERO_GPU_SPACES:
            raise HubHTTPError(402, FREE_ZERO_GPU_LIMIT_MESSAGE)
        return
    raise HubHTTPError(402, FREE_CPU_MESSAGE if hardware == CPU_BASIC else FREE_GPU_MESSAGE)


def _stage(hub: HubServer, repo: Repo) -> tuple[str, str | None]:
    """The stage the Space reaches with its ``main``, and the error message of a ``RUNTIME_ERROR``."""
    commit = repo.commits[repo.branches["main"]]
    readme = commit.tree.get("README.md")
    front: dict[str, Any] = {}
    if readme is not None:
        try:
            front = parse_front_matter(hub.storage.object_path(readme.sha256).read_text(errors="replace")) or {}
        except ValueError:
            front = {}
    app_file = str(front.get("app_file") or ("index.html" if repo.sdk == "static" else "app.py"))
    entry = commit.tree.get(app_file)
    if entry is None:
        return "NO_APP_FILE", None
    if repo.sdk in ("gradio", "docker", "streamlit") and repo.hardware == ZERO_GPU:
        code = hub.storage.object_path(entry.sha256).read_text(errors="replace")
        if not _GPU_DECORATOR.search(code):
            return "RUNTIME_ERROR", ZERO_GPU_MISSING_FUNCTION
    return "RUNNING", None


def runtime_json(hub: HubServer, repo: Repo) -> dict[str, Any]:
    """The ``SpaceRuntime`` JSON of a Space (lock held)."""
    stage, error = _stage(hub, repo)
    hardware = None if repo.sdk == "static" else repo.hardware
    body: dict[str, Any] = {
        "stage": stage,
        "hardware": {"current": hardware if stage == "RUNNING" else None, "requested": hardware},
        "storage": None,
        "gcTimeout": None if repo.sdk == "static" else 172800,
        "replicas": {"current": 1, "requested": 1},
        "devMode": False,
        "domains": [],
    }
    if error:
        body["errorMessage"] = error
    return body


def runtime(hub: HubServer, req: Request, repo_type: str, repo_id: str) -> Response:
    """``GET /api/spaces/{repo}/runtime``."""
    with hub.lock:
        repo = readable_repo(hub.storage, req.user, repo_type, repo_id)
        return Response.json(runtime_json(hub, repo))


def request_hardware(hub: HubServer, req: Request, repo_type: str, repo_id: str) -> Response:
    """``POST /api/spaces/{repo}/hardware`` with ``{"flavor": ...}`` (``HfApi.request_space_hardware``)."""
    flavor = req.json().get("flavor")
    if not isinstance(flavor, str) or not flavor:
        raise HubHTTPError(400, f"Invalid hardware flavor: {flavor!r}")
    with hub.lock:
        repo = writable_repo(hub.storage, req.user, repo_type, repo_id)
        if repo.sdk == "static":
            raise HubHTTPError(400, "Static Spaces run on no hardware")
        check_hardware(hub, req.user, sdk=repo.sdk, hardware=flavor, repo_id=repo_id)
        repo.hardware = flavor
        return Response.json(runtime_json(hub, repo))
