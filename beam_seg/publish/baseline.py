"""The baseline gate: a candidate is blessed only if it is not worse than the model already published.

As TFX's Evaluator does, the candidate and the baseline (``--bless_against``: ``auto``, the version ``main`` of the
model repo points to; ``REPO@REV``; or ``none``) are evaluated on the same data, the candidate's own test split
(``--data_dir``), in one pass of ``python -m beam_seg.evaluate``. That job runs in a child process: the publish
stage never imports TensorFlow, the evaluation's models need it. The candidate is blessed when its mean IoU is at
least the baseline's minus ``--max_regression``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from beam_seg import fs
from beam_seg.hub import errors, repos
from beam_seg.hub.retry import RetryPolicy

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = [
    "AUTO",
    "EVALUATION_DIR",
    "NONE",
    "Baseline",
    "BaselineComparison",
    "BaselineError",
    "compare",
    "parse_bless_against",
    "resolve_baseline",
]

logger = logging.getLogger(__name__)

AUTO, NONE = "auto", "none"
EVALUATION_DIR = "publish_evaluation"  # Under --output_dir: evaluate's eval_report.json and picture.
EVAL_REPORT = "eval_report.json"
METRIC = "mean_iou"
_SPEC = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)@(?P<rev>[\w./-]+)")


class BaselineError(RuntimeError):
    """The comparison could not be made (the evaluation failed, or its report lacks a number); one line."""


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The published model to compare with.

    Attributes:
        repo_id: Its model repository.
        revision: The commit sha (what is evaluated, so a moving tag cannot change the answer).
        version: The version (tag) naming that commit, if any.
    """

    repo_id: str
    revision: str
    version: str | None

    @property
    def location(self) -> str:
        """``hf://repo@sha``, as :func:`beam_seg.loader.load_model` takes it."""
        return f"hf://{self.repo_id}@{self.revision}"

    def describe(self) -> str:
        """``repo@version`` (or ``repo@<short sha>``), for messages."""
        return f"{self.repo_id}@{self.version or self.revision[:12]}"


@dataclasses.dataclass(frozen=True)
class BaselineComparison:
    """Candidate and baseline on the same split.

    Attributes:
        split: The split both were evaluated on.
        candidate: The candidate's mean IoU.
        baseline: The baseline's mean IoU.
        max_regression: How much worse the candidate may be.
        report: Where ``eval_report.json`` is.
    """

    split: str
    candidate: float
    baseline: float
    max_regression: float
    report: str

    @property
    def blessed(self) -> bool:
        """Whether the candidate is not worse than the baseline by more than ``max_regression``."""
        return self.candidate >= self.baseline - self.max_regression


def parse_bless_against(value: str) -> str | tuple[str, str]:
    """``auto``, ``none`` or ``(repo_id, revision)`` from ``REPO@REV``.

    Raises:
        ValueError: quoting the value.
    """
    if value in (AUTO, NONE):
        return value
    match = _SPEC.fullmatch(value)
    if match is None:
        raise ValueError(f"--bless_against {value!r} must be auto, none or user/repo@revision (e.g. user/pets@v3)")
    return match["repo"], match["rev"]


def resolve_baseline(
    api: HfApi, spec: str | tuple[str, str], *, model_repo: str, policy: RetryPolicy | None = None
) -> Baseline | None:
    """The baseline ``spec`` names, or ``None`` (``none``; ``auto`` with nothing published yet).

    ``auto`` is the commit ``main`` of ``model_repo`` points to, provided a version (tag) names it: publishing moves
    ``main`` and tags it, so that is the latest published version.

    Raises:
        HubError: one line (e.g. the repo or revision of ``REPO@REV`` does not exist).
    """
    if spec == NONE:
        return None
    repo_id, wanted = (model_repo, None) if spec == AUTO else spec
    try:
        branches, tags = repos.list_refs(api, repo_id=repo_id, policy=policy)
    except errors.NotFoundError:
        if spec == AUTO:
            return None  # Never published: nothing to compare with.
        raise
    if wanted is None:
        head = branches.get("main")
        named = sorted(tag for tag, sha in tags.items() if sha == head)
        return Baseline(repo_id, head, named[-1]) if head and named else None
    sha = tags.get(wanted) or branches.get(wanted) or (wanted if re.fullmatch(r"[0-9a-f]{40}", wanted) else None)
    if sha is None:
        known = ", ".join(sorted(tags)[-5:]) or "none"
        raise errors.VersionNotFoundError(
            f"--bless_against {repo_id}@{wanted}: no such tag, branch or commit (latest tags: {known})",
            repo_id=repo_id,
        )
    return Baseline(repo_id, sha, wanted if wanted in tags else None)


def _mean_iou(report: dict[str, Any], model: str, path: str) -> float:
    try:
        return float(report[model][METRIC])
    except (KeyError, TypeError, ValueError):
        raise BaselineError(f"{path} has no {model} {METRIC}; is beam_seg.evaluate up to date?") from None


def compare(
    baseline: Baseline,
    *,
    candidate_dir: str,
    data_dir: str,
    output_dir: str,
    max_regression: float,
    split: str = "test",
    extra_args: Sequence[str] = (),
) -> BaselineComparison:
    """Evaluates the candidate and ``baseline`` on ``data_dir``'s ``split`` in a child ``beam_seg.evaluate`` process.

    Its console lines (progress) reach the user as they come; the Hub token reaches it through the environment.

    Raises:
        BaselineError: the evaluation failed (its own one-line message is above) or its report is unusable.
    """
    out = fs.join(output_dir, EVALUATION_DIR)
    command = [
        sys.executable,
        "-m",
        "beam_seg.evaluate",
        "--data_dir",
        data_dir,
        "--candidate",
        candidate_dir,
        "--baseline",
        baseline.location,
        "--split",
        split,
        "--output_dir",
        out,
        *extra_args,
    ]
    logger.info("evaluating the candidate against %s on %s's %s split", baseline.describe(), data_dir, split)
    code = subprocess.run(command, check=False).returncode
    if code != 0:
        raise BaselineError(
            f"evaluating the candidate against {baseline.describe()} failed (python -m beam_seg.evaluate exit code "
            f"{code}; its message is above); nothing was pushed"
        )
    path = fs.join(out, EVAL_REPORT)
    try:
        report = fs.read_json(path)
    except (OSError, ValueError) as e:
        raise BaselineError(f"cannot read {path}: {e}") from None
    return BaselineComparison(
        split=split,
        candidate=_mean_iou(report, "candidate", path),
        baseline=_mean_iou(report, "baseline", path),
        max_regression=max_regression,
        report=path,
    )
