"""The demo Space: a template folder rendered for one model revision and pushed to the Space's ``main`` in one commit.

Text files of the template (UTF-8 without NUL bytes) have their placeholders replaced; every other file is
copied byte for byte. Placeholders are written ``$NAME`` or ``${NAME}``; only known names are replaced
(``$HOME`` or ``$$`` in a script stay as they are):

=====================  ======================================================================================
``$MODEL_REPO_ID``     the model repository, ``user/name``
``$MODEL_VERSION``     the published version (tag), e.g. ``v20261123T010203Z`` — for display
``$MODEL_REVISION``    the commit sha that version points to — what the app should pass as ``revision=``, so
                       the Space keeps serving exactly this model even if the tag or ``main`` move
``$MODEL_REPO_URL``    the model's web page
``$HUB_URL``           the Hub endpoint (``https://huggingface.co``, or ``HF_ENDPOINT``): where a static page
                       fetches the model files, ``$HUB_URL/$MODEL_REPO_ID/resolve/$MODEL_REVISION/<file>``
``$LITERT_JS_URL``     where a static page loads the LiteRT.js runtime from: :data:`LITERT_JS_URL`, the pinned
                       npm package on a CDN, unless ``--placeholder LITERT_JS_URL=...`` names another copy
``$<KEY>``             any ``--placeholder KEY=VALUE``
=====================  ======================================================================================
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from beam_seg import fs
from beam_seg.hub import auth, commits, files, retry

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = [
    "RESERVED_PLACEHOLDERS",
    "is_text",
    "leftover_placeholders",
    "load_template",
    "parse_placeholders",
    "placeholder_values",
    "push_space",
    "render_template",
    "render_text",
    "write_preview",
]

logger = logging.getLogger(__name__)

RESERVED_PLACEHOLDERS: tuple[str, ...] = (
    "MODEL_REPO_ID",
    "MODEL_VERSION",
    "MODEL_REVISION",
    "MODEL_REPO_URL",
    "HUB_URL",
)
# The browser runtime of the static Space: @litertjs/core from npm, pinned, as jsdelivr serves the npm package.
LITERT_JS_VERSION = "2.5.3"
LITERT_JS_URL = f"https://cdn.jsdelivr.net/npm/@litertjs/core@{LITERT_JS_VERSION}"
_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
_PLACEHOLDER = re.compile(r"\$(?:\{([A-Z][A-Z0-9_]*)\}|([A-Z][A-Z0-9_]*)(?![A-Za-z0-9_]))")
_SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".venv", ".gradio", "flagged"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def parse_placeholders(items: Sequence[str]) -> dict[str, str]:
    """Parses repeated ``--placeholder KEY=VALUE`` options.

    Raises:
        ValueError: quoting the bad item (no ``=``, a key that is not UPPER_SNAKE_CASE, a reserved or repeated key).
    """
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _KEY.fullmatch(key):
            raise ValueError(f"--placeholder {item!r} must look like KEY=VALUE with KEY in UPPER_SNAKE_CASE")
        if key in RESERVED_PLACEHOLDERS:
            raise ValueError(f"--placeholder {item!r}: {key} is set by the publisher and cannot be overridden")
        if key in values:
            raise ValueError(f"--placeholder {key} is given twice ({values[key]!r} and {value!r})")
        values[key] = value
    return values


def placeholder_values(
    *, model_repo: str, version: str, revision: str, endpoint: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The values substituted into the template (see the module docstring)."""
    return {
        "LITERT_JS_URL": LITERT_JS_URL,
        **dict(extra or {}),
        "HUB_URL": endpoint.rstrip("/"),
        "MODEL_REPO_ID": model_repo,
        "MODEL_VERSION": version,
        "MODEL_REVISION": revision,
        "MODEL_REPO_URL": auth.repo_url(endpoint, model_repo),
    }


def load_template(app_dir: str) -> dict[str, bytes]:
    """Reads every file under the local folder ``app_dir`` as ``{posix relative path: bytes}``.

    Caches (``__pycache__``, ``.git``, ``*.pyc`` ...) are skipped.

    Raises:
        FileNotFoundError: if ``app_dir`` is not a directory or holds no file.
    """
    if not os.path.isdir(app_dir):
        raise FileNotFoundError(f"--app_dir {app_dir!r} is not a directory (the Gradio Space template)")
    template: dict[str, bytes] = {}
    for root, dirs, names in os.walk(app_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(names):
            if name.endswith(_SKIPPED_SUFFIXES):
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                template[os.path.relpath(path, app_dir).replace(os.sep, "/")] = f.read()
    if not template:
        raise FileNotFoundError(f"--app_dir {app_dir!r} holds no files")
    if "README.md" not in template:
        logger.warning("the Space template %s has no README.md; the Hub needs its front matter (sdk: gradio)", app_dir)
    return template


def is_text(data: bytes) -> bool:
    """Whether ``data`` is text to render (not :func:`beam_seg.hub.files.is_binary`, as the Hub decides it)."""
    return not files.is_binary(data)


def render_text(text: str, values: Mapping[str, str]) -> str:
    """Replaces ``$KEY`` / ``${KEY}`` for the keys of ``values``; everything else is left untouched."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1) or match.group(2)
        return values[key] if key in values else match.group(0)

    return _PLACEHOLDER.sub(substitute, text)


def render_template(template: Mapping[str, bytes], values: Mapping[str, str]) -> dict[str, bytes]:
    """Renders every text file of ``template``; binary files are returned unchanged (the same bytes)."""
    return {
        path: render_text(data.decode("utf-8"), values).encode("utf-8") if is_text(data) else data
        for path, data in sorted(template.items())
    }


def leftover_placeholders(rendered: Mapping[str, bytes]) -> dict[str, list[str]]:
    """``$MODEL_*`` and ``$HUB_URL`` placeholders still present in rendered text files (a template typo), by path."""
    found: dict[str, list[str]] = {}
    for path, data in rendered.items():
        if is_text(data):
            names = sorted({m.group(1) or m.group(2) for m in _PLACEHOLDER.finditer(data.decode("utf-8"))})
            names = [n for n in names if n.startswith("MODEL_") or n in RESERVED_PLACEHOLDERS]
            if names:
                found[path] = names
    return found


def write_preview(rendered: Mapping[str, bytes], dest_dir: str) -> None:
    """Writes rendered files under ``dest_dir`` (local or ``gs://``), replacing what a previous preview left."""
    fs.delete([dest_dir])
    for path, data in rendered.items():
        fs.write_bytes(fs.join(dest_dir, *path.split("/")), data)


def push_space(
    api: HfApi,
    *,
    repo_id: str,
    rendered: Mapping[str, bytes],
    message: str,
    policy: retry.RetryPolicy | None = None,
) -> commits.TreeCommit:
    """Makes the Space's ``main`` hold exactly ``rendered`` in one commit (none if it already does).

    The Space repository must exist (:func:`beam_seg.hub.repos.ensure_repo` with ``repo_type="space"``).
    """
    wanted = [files.local_file(path, data) for path, data in sorted(rendered.items())]
    return commits.commit_tree(
        api,
        repo_id=repo_id,
        repo_type="space",
        files=wanted,
        content=lambda f: f.data if f.data is not None else b"",
        message=message,
        description="Rendered from the beam_seg Gradio template by python -m beam_seg.publish",
        policy=policy,
    )
