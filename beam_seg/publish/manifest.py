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
                   "blessed": true, "reason": "...",
                   "baseline": "user/repo@v3" | null,          # --bless_against: the published model compared with
                   "candidate_value": 0.91 | null, "baseline_value": 0.90 | null,  # mean IoU, same split
                   "max_regression": 0.0 | null} | null,
      "model": {"repo_id", "url", "private", "commit_sha", "commit_url", "version_url", "branch", "tag",
                "commits_created", "reused_commit"},
      "space": null | {"repo_id", "url", "sdk": "gradio" | "static", "hardware": "cpu-basic" | "zero-a10g" | ...
                       | null, "hardware_note": null | "<why not the hardware asked first>", "created": bool | null,
                       "commit_sha", "commits_created", "reused_commit",
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
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from beam_seg import fs
from beam_seg.hub.auth import repo_url
from beam_seg.publish.options import MANIFEST_NAME

if TYPE_CHECKING:
    from beam_seg.hub.files import LocalFile
    from beam_seg.hub.spaces import SpaceSetup
    from beam_seg.hub.versions import VersionCommit
    from beam_seg.publish.plan import PublishPlan
    from beam_seg.publish.uploads import ChunkResult

__all__ = [
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "STATUSES",
    "base_manifest",
    "finish_manifest",
    "new_manifest",
    "planned_files",
    "pushed_manifest",
    "read_manifest",
    "space_entry",
    "space_setup_entry",
    "totals",
    "utc_iso",
    "write_manifest",
]

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
        "durations_s": dict.fromkeys(PHASES),
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
    """Writes ``<output_dir>/publish_manifest.json`` (local or ``gs://``) atomically; returns its path."""
    path = fs.join(output_dir, MANIFEST_NAME)
    fs.write_json(path, manifest)
    return path


def read_manifest(output_dir: str) -> dict[str, Any]:
    """Reads ``<output_dir>/publish_manifest.json``."""
    return fs.read_json(fs.join(output_dir, MANIFEST_NAME))


# ---------------------------------------------------------------------------------------------- builders


def space_entry(plan: PublishPlan, files: dict[str, bytes], **extra: Any) -> dict[str, Any]:
    """The manifest's ``space`` entry for the rendered ``files`` (``extra``: version, revision, sha, ...)."""
    assert plan.space_repo and plan.template is not None
    return {
        "repo_id": plan.space_repo,
        "url": repo_url(plan.endpoint, plan.space_repo, "space"),
        "sdk": plan.space_sdk,
        "hardware": None if plan.space_sdk == "static" else plan.space_hardware,
        "hardware_note": None,
        "created": None,
        "commit_sha": extra.get("sha"),
        "commits_created": extra.get("commits_created", 0),
        "reused_commit": extra.get("commits_created", 0) == 0 if extra.get("sha") else None,
        "model_version": extra["version"],
        "model_revision": extra["revision"],
        "files": [{"path": p, "size": len(d), "rendered": d != plan.template[p]} for p, d in sorted(files.items())],
        **({"preview_dir": extra["preview_dir"]} if "preview_dir" in extra else {}),
    }


def space_setup_entry(setup: SpaceSetup | None) -> dict[str, Any]:
    """The manifest's Space fields that say how the Space was set up on the Hub (nothing without a setup)."""
    if setup is None:
        return {}
    return {"sdk": setup.sdk, "hardware": setup.hardware, "hardware_note": setup.note, "created": setup.created}


def base_manifest(plan: PublishPlan, status: str, reason: str | None = None) -> dict[str, Any]:
    """A manifest of ``plan`` with ``status``: what the plan says, before anything happened."""
    doc = new_manifest(
        status=status,
        version=plan.version,
        started=plan.started,
        endpoint=plan.endpoint,
        model_dir=plan.model_dir,
        model_repo=plan.model_repo,
        private=plan.private,
        reason=reason,
    )
    doc["blessing"] = plan.blessing.to_json() if plan.blessing else None
    doc["durations_s"]["plan"] = round(plan.plan_seconds, 3)
    doc["pipeline"] = {
        "runner": plan.runner,
        "chunks": None,
        "chunk_size_mb": plan.chunk_bytes / 1e6,
        "upload_threads": plan.upload_threads,
        "parallel_chunks": plan.parallel_chunks,
    }
    return doc


def pushed_manifest(
    plan: PublishPlan,
    files: Sequence[LocalFile],
    result: VersionCommit,
    *,
    chunks: Sequence[ChunkResult],
) -> dict[str, Any]:
    """The manifest of a pushed version (the Space entry and the end time are added downstream)."""
    changed = set(result.tree.changed) if result.tree else set()
    predicted = {f.path_in_repo: f.lfs_predicted for f in plan.files}
    doc = base_manifest(plan, "pushed")
    doc["files"] = [
        {
            "path": f.path_in_repo,
            "size": f.size,
            "sha256": f.sha256,
            "lfs": f.path_in_repo in result.lfs_paths,
            "lfs_predicted": predicted.get(f.path_in_repo, False),
            "action": "uploaded" if f.path_in_repo in changed else "skipped",
        }
        for f in files
    ]
    doc["deleted"] = list(result.tree.deleted) if result.tree else []
    doc["totals"] = totals(doc["files"])
    base = plan.endpoint.rstrip("/")
    doc["model"].update(
        url=repo_url(plan.endpoint, plan.model_repo),  # The URL the Hub returned replaces it (WriteManifest).
        commit_sha=result.sha,
        branch=plan.version,
        tag=plan.version,
        commit_url=f"{base}/{plan.model_repo}/commit/{result.sha}",
        version_url=f"{base}/{plan.model_repo}/tree/{plan.version}",
        commits_created=result.tree.commits_created if result.tree else 0,
        reused_commit=result.reused,
    )
    doc["durations_s"].update(
        create_repos=None,
        upload=round(max(c.finished for c in chunks) - min(c.started for c in chunks), 3),
        commit=round(result.commit_seconds, 3),
        refs=round(result.refs_seconds, 3),
    )
    doc["pipeline"]["chunks"] = len(chunks)
    return doc


def planned_files(plan: PublishPlan) -> list[dict[str, Any]]:
    """The ``files`` entries of a run that pushed nothing (dry run, not blessed, failed)."""
    return [
        {
            "path": f.path_in_repo,
            "size": f.size,
            "sha256": None,
            "lfs": None,
            "lfs_predicted": f.lfs_predicted,
            "action": "planned",
        }
        for f in plan.files
    ]


def finish_manifest(plan: PublishPlan, doc: dict[str, Any]) -> str:
    """Stamps the finish time and total duration (on a copy) and writes the manifest; returns its path."""
    finished = time.time()
    durations = {**doc["durations_s"], "total": round(finished - plan.started, 3)}
    return write_manifest(plan.output_dir, {**doc, "finished_at": utc_iso(finished), "durations_s": durations})
