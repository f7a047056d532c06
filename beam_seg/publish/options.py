"""The flags of ``python -m beam_seg.publish``, defined once for ``--help`` and for the job's options.

Plain ``argparse`` (no Beam import), so ``--help`` answers at once; :class:`beam_seg.publish.pipeline.PublishOptions`
registers the same flags with Beam.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from beam_seg import cli

__all__ = [
    "DEFAULT_APP_DIRS",
    "LOCAL_NUM_WORKERS",
    "LOCAL_RUNNING_MODE",
    "MANIFEST_NAME",
    "PROG",
    "add_flags",
    "help_parser",
    "normalize_argv",
    "parse_own_flags",
]

PROG = "python -m beam_seg.publish"
# The Space template of each --space_sdk (relative to the working directory, the repository root).
DEFAULT_APP_DIRS = {"gradio": "apps/gradio/semantic_segmentation", "static": "apps/static/semantic_segmentation"}
SPACE_SDKS = tuple(DEFAULT_APP_DIRS)
SPACE_HARDWARE_AUTO = "auto"
MANIFEST_NAME = "publish_manifest.json"  # Written into --output_dir (schema: beam_seg.publish.manifest).
# Local runner defaults: uploads are I/O bound and threaded inside the DoFn, so one in-memory worker is fastest
# (bench/publish.py); more local workers would only add start-up time.
LOCAL_RUNNING_MODE = "in_memory"
LOCAL_NUM_WORKERS = 1
_TRUE = {"", "true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Adds the job's own flags to ``parser``."""
    cli.add_logging_flags(parser)
    cli.add_shared_argument(
        parser,
        "--output_dir",
        help="Where publish_manifest.json (and the dry-run preview) go (default: --model_dir when it is local, else "
        "the current directory; must be gs:// on Dataflow).",
    )
    parser.add_argument(
        "--model_dir",
        help="A complete training output directory (local or gs://): saved_model/, metrics.json, ... and "
        "model_config.json, which training writes last (without it the run is refused). Required unless --rollback.",
    )
    parser.add_argument("--model_repo", help="Model repository on the Hub, user/name or org/name. Required.")
    parser.add_argument("--space_repo", help="Demo Space to deploy, user/name (default: none, no Space is touched).")
    parser.add_argument(
        "--space_sdk",
        choices=SPACE_SDKS,
        default="gradio",
        help="gradio: the Gradio app (LiteRT on the CPU) on --space_hardware; static: a web page that runs the "
        "model in the visitor's browser (LiteRT.js), free for every account (default: %(default)s).",
    )
    parser.add_argument(
        "--space_hardware",
        default=SPACE_HARDWARE_AUTO,
        metavar="auto|cpu-basic|zero-a10g|FLAVOUR",
        help="Hardware of a Gradio Space. auto: cpu-basic, or ZeroGPU (zero-a10g) when the Hub answers 402 (free "
        "accounts pay for cpu-basic since July 2026; they may host 2 ZeroGPU Spaces); any Hub flavour otherwise. "
        "Settled before any upload. An existing Space keeps its hardware under auto (default: %(default)s).",
    )
    parser.add_argument(
        "--app_dir",
        default=None,
        help="Local folder of the Space template; $MODEL_REPO_ID, $MODEL_VERSION, $MODEL_REVISION, "
        "$MODEL_REPO_URL and $HUB_URL are replaced in its text files (default: "
        + ", ".join(f"{path} for {sdk}" for sdk, path in DEFAULT_APP_DIRS.items())
        + ").",
    )
    parser.add_argument(
        "--version",
        default=None,
        help="Version to publish, created as a tag and a branch; immutable once published "
        "(default: v<UTC timestamp>, e.g. v20261123T010203Z).",
    )
    parser.add_argument(
        "--min_miou",
        type=float,
        default=0.0,
        help="Blessing gate: push only if the val (else test) mean IoU in metrics.json is at least this; "
        "below it nothing is pushed and the manifest says why (default: %(default)s = no gate).",
    )
    parser.add_argument(
        "--bless_against",
        default="auto",
        metavar="auto|none|REPO@REV",
        help="Baseline gate: evaluate the candidate and a published model on the candidate's test split (--data_dir) "
        "in one pass of python -m beam_seg.evaluate, and push only if the candidate's mean IoU is at least the "
        "baseline's minus --max_regression. auto: the version main of --model_repo points to (none yet: no "
        "comparison); none: no comparison (default: %(default)s).",
    )
    parser.add_argument(
        "--max_regression",
        type=float,
        default=0.0,
        help="How much lower than the baseline's the candidate's mean IoU may be (default: %(default)s).",
    )
    cli.add_shared_argument(
        parser,
        "--data_dir",
        help="The candidate's TFRecords (stage 1's output, local or gs://), whose test split the baseline gate "
        "evaluates both models on; needed when there is a baseline.",
    )
    parser.add_argument(
        "--private", action="store_true", help="Create the model repo and the Space as private repositories."
    )
    parser.add_argument(
        "--chunk_size_mb",
        type=float,
        default=16.0,
        help="Target size of one upload work item; a file larger than this is a chunk of its own "
        "(default: %(default)s).",
    )
    parser.add_argument(
        "--upload_threads",
        type=int,
        default=4,
        help="Transfers (files, or parts of a file the Hub wants in parts) per chunk: a worker process runs up "
        "to parallel_chunks x upload_threads at a time (defaults tuned with bench/publish.py; default: "
        "%(default)s).",
    )
    parser.add_argument(
        "--parallel_chunks",
        type=int,
        default=16,
        help="Chunks a worker process uploads at the same time, whatever its number of bundles or harness "
        "threads (default: %(default)s).",
    )
    parser.add_argument(
        "--publish_dry_run",
        action="store_true",
        help="Alias --dry_run. Touch no network: render the Space and the model card under "
        "<output_dir>/publish_preview/ and list what would be uploaded in the manifest and the log.",
    )
    parser.add_argument(
        "--placeholder",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="Extra $KEY placeholder for the Space template (repeatable).",
    )
    parser.add_argument(
        "--hf_token_secret",
        default=None,
        metavar="projects/P/secrets/S[/versions/V]",
        help="Secret Manager secret holding the Hub token, for Dataflow workers (their containers have no "
        "HF_TOKEN): each worker reads it once with its own service account, which needs "
        "roles/secretmanager.secretAccessor. A token already in the environment wins. The token itself is "
        "never a flag.",
    )
    parser.add_argument(
        "--rollback",
        default=None,
        metavar="VERSION",
        help="Re-point --space_repo at an already published VERSION of --model_repo (resolved from its tag); "
        "uploads no model file and runs no Beam job.",
    )


def help_parser() -> argparse.ArgumentParser:
    """The parser behind ``--help``: the job's flags, and the Beam options that matter most."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Publish a trained model to the Hugging Face Hub as an immutable version, and deploy its demo "
        "Space (a Beam job: uploads fan out over workers, one commit fans them in).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""\
  --dry_run             Same as --publish_dry_run. (Beam's own --dry_run of TestOptions takes a value and
                        would clash; a bare --dry_run or --dry_run=true given to this command means ours.)

Token and endpoint: HF_TOKEN (or the token saved by `hf auth login`), never a flag; HF_ENDPOINT (read at
run time, default https://huggingface.co). On Dataflow, workers read it from --hf_token_secret (Secret Manager).

Apache Beam pipeline options are accepted too (any other flag is an error), for example:
  --runner DirectRunner|DataflowRunner   default: {cli.LOCAL_RUNNER} (the DirectRunner's batch engine, without
                                         its Prism download attempt) with
                                         --direct_running_mode={LOCAL_RUNNING_MODE}
                                         --direct_num_workers={LOCAL_NUM_WORKERS}
  --direct_running_mode, --direct_num_workers
  Dataflow: --project, --region, --temp_location gs://..., --staging_location gs://...,
            --setup_file ./setup.py, --machine_type, --max_num_workers, --sdk_container_image

Exit codes: 0 pushed / dry run / rolled back, 1 failed (Hub, network or version conflict),
            2 bad arguments, input or missing token, 3 not blessed (below --min_miou, or worse than the
            baseline of --bless_against).

Outputs: the model repo's main, tag and branch --version; the Space's main;
  <output_dir>/{MANIFEST_NAME}   what was pushed (schema: beam_seg/publish/manifest.py)
  <output_dir>/publish_preview/          model card and rendered Space (--dry_run only)
""",
    )
    add_flags(parser)
    return parser


def parse_own_flags(argv: Sequence[str]) -> argparse.Namespace:
    """The job's own flags, parsed without Beam (no Beam option may be among them).

    For :func:`beam_seg.publish.plan.check_flags` by a caller that builds the command line, such as run_dataflow.sh,
    to fail before stage 1 rather than in stage 3.

    Raises:
        cli.UsageError: one line.
    """
    parser = cli.StrictArgumentParser(prog=PROG)
    add_flags(parser)
    return parser.parse_args(normalize_argv(argv))


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """Maps ``--dry_run`` (bare, ``=true``/``=false`` or followed by true/false) to ``--publish_dry_run``.

    Raises:
        cli.UsageError: for another value.
    """
    out: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item == "--dry_run" or item.startswith("--dry_run="):
            value = item.partition("=")[2].lower()
            if item == "--dry_run" and i + 1 < len(items) and items[i + 1].lower() in _TRUE | _FALSE:
                value = items[i + 1].lower()
                i += 1
            if value not in _TRUE | _FALSE:
                raise cli.UsageError(f"--dry_run {value!r}: use a bare --dry_run, or true/false")
            if value in _TRUE:
                out.append("--publish_dry_run")
        else:
            out.append(item)
        i += 1
    return out
