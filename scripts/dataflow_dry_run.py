"""Builds one stage's Dataflow job with Beam's ``--dry_run`` (nothing is submitted) and records what was built.

Usage::

    python scripts/dataflow_dry_run.py --stage tfrecord_gen|publish|predict|evaluate --record FILE.json -- <flags>

``run_dataflow.sh --gcp --dry_run`` runs stages 1 and 3 through this (``predict`` and ``evaluate`` are the Beam jobs
that apply a trained model): the stage's own ``build_pipeline`` parses
and validates the flags exactly as ``python -m beam_seg.<stage>`` would (reading its gs:// input), then the
pipeline runs with Beam's ``TestOptions.dry_run`` on, so ``DataflowRunner`` translates it into a Dataflow job
and returns without creating it. Beam's flag is set on the options rather than passed on the command line
because ``beam_seg.publish`` reads a bare ``--dry_run`` as its own (publish without network).

The record (JSON) is what the job would be submitted with: runner, job name, project, region, temp and
staging locations, setup file, SDK container image (as given and as it appears in the job's environment),
machine type, worker cap, staged files, the job's top-level steps, and ``worker_requirements``: the requirements
that each worker's ``pip install`` of the staged package (``workflow.tar.gz``, the sdist Beam built from
``--setup_file``) resolves, read from that very file's metadata (its ``Requires-Dist`` without extras). Exit codes:
0 built, 2 bad flags or input (one line, as the stage itself reports it).
"""

from __future__ import annotations

import argparse
import email.parser
import json
import logging
import os
import sys
import tarfile
from collections.abc import Callable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    SetupOptions,
    StandardOptions,
    TestOptions,
    WorkerOptions,
)
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from packaging.requirements import Requirement

logger = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("tfrecord_gen", "publish", "predict", "evaluate")
WORKFLOW_TARBALL = "workflow.tar.gz"  # Beam's name for the staged sdist of --setup_file.


def _builder(stage: str) -> Callable[[Sequence[str]], tuple[beam.Pipeline, Any]]:
    """The stage's ``build_pipeline`` (imported lazily: each pulls in its own heavy dependencies)."""
    if stage == "tfrecord_gen":
        from beam_seg.data import job

        return job.build_pipeline
    if stage == "predict":
        from beam_seg.predict import job

        return job.build_pipeline
    if stage == "evaluate":
        from beam_seg.evaluate import job

        return job.build_pipeline
    from beam_seg.publish import job

    return job.build_pipeline


def package_requirements(sdist: str) -> list[str]:
    """The requirements ``pip install SDIST`` resolves: the sdist's ``Requires-Dist`` that apply without extras."""
    with tarfile.open(sdist) as tar:
        (member,) = [m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")]
        metadata = email.parser.Parser().parsestr(tar.extractfile(member).read().decode("utf-8"))
    requirements = [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]
    return [str(r) for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]


def describe_job(stage: str, pipeline: beam.Pipeline, result: Any, argv: Sequence[str]) -> dict[str, Any]:
    """What a dry-run ``DataflowRunner`` built: the job's options, environment and top-level steps."""
    options = pipeline.options
    cloud = options.view_as(GoogleCloudOptions)
    worker = options.view_as(WorkerOptions)
    job = getattr(result, "job", None)
    proto = getattr(pipeline.runner, "proto_pipeline", None)
    images: list[str] = []
    staged: list[str] = []
    steps: list[str] = []
    worker_requirements: list[str] | None = None  # None: no package staged (no --setup_file).
    if proto is not None:
        for env in proto.components.environments.values():
            if env.urn == "beam:env:docker:v1":
                images.append(beam_runner_api_pb2.DockerPayload.FromString(env.payload).container_image)
            for dep in env.dependencies:
                role = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(dep.role_payload)
                staged.append(role.staged_name)
                if role.staged_name == WORKFLOW_TARBALL and dep.type_urn == common_urns.artifact_types.FILE.urn:
                    sdist = beam_runner_api_pb2.ArtifactFilePayload.FromString(dep.type_payload).path
                    worker_requirements = package_requirements(sdist)
        steps = sorted({t.unique_name for t in proto.components.transforms.values() if t.unique_name.count("/") == 1})
    return {
        "stage": stage,
        "submitted": False,
        "runner": str(options.view_as(StandardOptions).runner),
        "dry_run": bool(options.view_as(TestOptions).dry_run),
        "job_name": cloud.job_name,
        "job_type": job.proto.type.name if job is not None else None,
        "project": cloud.project,
        "region": cloud.region,
        "temp_location": cloud.temp_location,
        "staging_location": cloud.staging_location,
        "service_account_email": cloud.service_account_email,
        "setup_file": options.view_as(SetupOptions).setup_file,
        "sdk_container_image": worker.sdk_container_image,
        "environment_images": sorted(set(images)),
        "machine_type": worker.machine_type,
        "max_num_workers": worker.max_num_workers,
        "staged_files": sorted(set(staged)),
        "worker_requirements": worker_requirements,
        "steps": steps,
        "argv": list(argv),
    }


def run(argv: Sequence[str] | None = None) -> int:
    """Builds the stage's job with Beam's dry run and writes the record; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python scripts/dataflow_dry_run.py",
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Everything after -- is passed to the stage's build_pipeline unchanged.",
    )
    parser.add_argument("--stage", choices=STAGES, required=True, help="Which Beam job to build.")
    parser.add_argument("--record", required=True, help="Local JSON file that receives the description of the job.")
    parser.add_argument("stage_args", nargs=argparse.REMAINDER, help="The stage's flags, after --.")
    args = parser.parse_args(argv)
    stage_args = args.stage_args[1:] if args.stage_args[:1] == ["--"] else args.stage_args
    from beam_seg import cli

    cli.configure_logging()
    try:
        pipeline, _ = _builder(args.stage)(stage_args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:  # cli.UsageError is a ValueError.
        logger.error("%s", e)
        return 2
    pipeline.options.view_as(TestOptions).dry_run = True  # Beam's own: translate the job, do not create it.
    result = pipeline.run()
    result.wait_until_finish()
    record = describe_job(args.stage, pipeline, result, stage_args)
    os.makedirs(os.path.dirname(os.path.abspath(args.record)), exist_ok=True)
    with open(args.record, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")
    print(
        f"dataflow dry run: {args.stage} job {record['job_name']} built with {record['runner']}, not submitted "
        f"({len(record['steps'])} top-level steps, image {record['sdk_container_image']}); record {args.record}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run())
