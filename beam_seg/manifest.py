"""``publish_manifest.json``: what one ``python -m beam_seg.publish`` run did, written at its end.

Schema (``schema_version`` 1; times are UTC ISO-8601, sizes bytes, durations seconds)::

    {
      "schema_version": 1,
      "status": "pushed" | "not-blessed" | "dry-run" | "failed" | "rolled-back",
      "reason": null | "<one line: why not pushed / why it failed>",
      "version": "v20261123T010203Z",          # the tag and branch (for a rollback: the version re-pointed to)
      "started_at": "...Z", "finished_at": "...Z",
      "endpoint": "https://huggingface.co",
      "model_dir": "<local path or gs:// URI>" | null,
      "blessing": {"metric": "val/mean_iou" | null, "value": 0.91 | null, "threshold": 0.5,
                   "blessed": true, "reason": "..."} | null,
      "model": {"repo_id", "url", "private", "commit_sha", "commit_url", "version_url", "branch", "tag",
                "commits_created", "reused_commit"},
      "space": null | {"repo_id", "url", "commit_sha", "commits_created", "reused_commit",
                       "model_version", "model_revision", "files": [{"path", "size", "rendered"}],
                       "preview_dir": "<dry run only>"},
      "files": [{"path", "size", "sha256" | null, "lfs": bool | null, "lfs_predicted": bool,
                 "action": "uploaded" | "skipped" | "planned"}],
      "deleted": ["<paths removed from main because the new version no longer has them>"],
      "totals": {"files", "bytes", "files_uploaded", "bytes_uploaded", "files_skipped", "bytes_skipped",
                 "lfs_files", "lfs_bytes"},
      "durations_s": {"plan", "create_repos", "upload", "commit", "refs", "space", "total"},
      "pipeline": {"runner", "chunks", "chunk_size_mb", "upload_threads", "parallel_chunks"} | null
    }

``uploaded`` means new or changed compared with ``main`` before the run (its bytes went to the Hub, unless the
LFS store already held the object, e.g. after an interrupted run); ``skipped`` means identical on ``main``:
nothing was sent. ``lfs`` is what the Hub stored (null when nothing was pushed); ``lfs_predicted`` is the local
prediction from the Hub's rules (``saved_model/**``, binary content, 10 MiB and more).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from beam_seg.hub import repo_url

__all__ = [
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "STATUSES",
    "new_manifest",
    "read_manifest",
    "totals",
    "utc_iso",
    "write_manifest",
]

MANIFEST_NAME = "publish_manifest.json"
SCHEMA_VERSION = 1
STATUSES: tuple[str, ...] = ("pushed", "not-blessed", "dry-run", "failed", "rolled-back")
PHASES: tuple[str, ...] = ("plan", "create_repos", "upload", "commit", "refs", "space", "total")


def utc_iso(ts: float) -> str:
    """``2026-11-23T01:02:03.123Z`` for a POSIX timestamp."""
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_manifest(
    *,
    status: str,
    version: str,
    started: float,
    endpoint: str,
    model_dir: str | None,
    model_repo: str,
    private: bool,
    reason: str | None = None,
) -> dict[str, Any]:
    """A manifest with every key present (``null`` / empty where the run did not get that far)."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {STATUSES}")
    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "reason": reason,
        "version": version,
        "started_at": utc_iso(started),
        "finished_at": None,
        "endpoint": endpoint,
        "model_dir": model_dir,
        "blessing": None,
        "model": {
            "repo_id": model_repo,
            "url": repo_url(endpoint, model_repo),
            "private": private,
            "commit_sha": None,
            "commit_url": None,
            "version_url": None,
            "branch": None,
            "tag": None,
            "commits_created": 0,
            "reused_commit": None,
        },
        "space": None,
        "files": [],
        "deleted": [],
        "totals": totals([]),
        "durations_s": {phase: None for phase in PHASES},
        "pipeline": None,
    }


def totals(files: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The ``totals`` entry computed from the ``files`` entries."""
    files = list(files)

    def count(pred: Any) -> tuple[int, int]:
        chosen = [f for f in files if pred(f)]
        return len(chosen), sum(int(f["size"]) for f in chosen)

    n, size = count(lambda f: True)
    up_n, up_b = count(lambda f: f["action"] == "uploaded")
    skip_n, skip_b = count(lambda f: f["action"] == "skipped")
    lfs_n, lfs_b = count(lambda f: f["lfs"] if f.get("lfs") is not None else f.get("lfs_predicted", False))
    return {
        "files": n,
        "bytes": size,
        "files_uploaded": up_n,
        "bytes_uploaded": up_b,
        "files_skipped": skip_n,
        "bytes_skipped": skip_b,
        "lfs_files": lfs_n,
        "lfs_bytes": lfs_b,
    }


def write_manifest(output_dir: str, manifest: Mapping[str, Any]) -> str:
    """Writes ``<output_dir>/publish_manifest.json`` (local or ``gs://``) via a temporary name; returns its path."""
    from apache_beam.io.filesystems import FileSystems

    path = FileSystems.join(output_dir, MANIFEST_NAME)
    temp = f"{path}.tmp-{os.getpid()}"
    if "://" not in output_dir:
        os.makedirs(output_dir, exist_ok=True)
    with FileSystems.create(temp) as f:
        f.write((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temp], [path])
    return path


def read_manifest(output_dir: str) -> dict[str, Any]:
    """Reads ``<output_dir>/publish_manifest.json``."""
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    path = FileSystems.join(output_dir, MANIFEST_NAME)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return json.loads(f.read())
