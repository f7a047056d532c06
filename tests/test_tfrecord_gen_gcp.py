"""gs:// input and output through a real GCS emulator, and a Dataflow job built offline (not submitted)."""

from __future__ import annotations

import json
import os

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.options.pipeline_options import GoogleCloudOptions, SetupOptions, WorkerOptions
from apache_beam.portability.api import beam_runner_api_pb2
from conftest import IN_MEMORY, REPO_ROOT

from beam_seg.data import codec
from beam_seg.data import job as tfrecord_gen


@pytest.fixture(scope="module")
def bucket(gcs_emulator, pets_dir):
    """A bucket holding the two official-style archives under raw/."""
    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    client.project = "test-project"
    bucket = client.create_bucket("beam-seg-test")
    for path in pets_dir.archives:
        bucket.blob(f"raw/{os.path.basename(path)}").upload_from_filename(path)
    return bucket


def test_tarballs_in_gcs_to_shards_in_gcs(bucket, pets_dir, tmp_path):
    out = "gs://beam-seg-test/tfrecords"
    argv = ["--input", "gs://beam-seg-test/raw", "--output_dir", out, "--resize", "32", *IN_MEMORY]
    assert tfrecord_gen.run(argv) == 0
    names = sorted(b.name for b in bucket.client.list_blobs(bucket, prefix="tfrecords/"))
    assert names == [
        "tfrecords/errors-00000-of-00001.jsonl",
        "tfrecords/schema.pbtxt",
        "tfrecords/stats.json",
        "tfrecords/test-00000-of-00001.tfrecord",
        "tfrecords/train-00000-of-00001.tfrecord",
        "tfrecords/val-00000-of-00001.tfrecord",
    ]  # No .tmp-* leftovers.
    stats = json.loads(bucket.blob("tfrecords/stats.json").download_as_bytes())
    assert stats["config"]["input_layout"] == "archives"
    assert stats["dataset"]["synthetic"] is True  # The sample data's marker travels inside annotations.tar.gz.
    assert stats["records"] + stats["errors"] == stats["listed"] == 60
    local = tmp_path / "train.tfrecord"
    bucket.blob("tfrecords/train-00000-of-00001.tfrecord").download_to_filename(str(local))
    records = [codec.decode_example(r.numpy()) for r in tf.data.TFRecordDataset(str(local))]
    assert len(records) == stats["splits"]["train"]["num_examples"] > 0
    assert {(r.height, r.width) for r in records} == {(32, 32)}


def test_dataflow_job_is_built_offline(bucket):
    argv = [
        "--input",
        "gs://beam-seg-test/raw",
        "--output_dir",
        "gs://beam-seg-test/df-out",
        "--runner",
        "DataflowRunner",
        "--dry_run",
        "True",
        "--project",
        "test-project",
        "--region",
        "europe-west4",
        "--temp_location",
        "gs://beam-seg-test/tmp",
        "--staging_location",
        "gs://beam-seg-test/staging",
        "--setup_file",
        os.path.join(REPO_ROOT, "setup.py"),
        "--machine_type",
        "n2-standard-4",
        "--max_num_workers",
        "8",
        "--no_auth",
    ]
    pipeline, _ = tfrecord_gen.build_pipeline(argv)
    result = pipeline.run()
    job = result.job
    assert job.proto.type.name == "JOB_TYPE_BATCH"
    assert job.proto.name.startswith("beamapp-")
    proto = pipeline.runner.proto_pipeline
    (env,) = proto.components.environments.values()
    image = beam_runner_api_pb2.DockerPayload.FromString(env.payload).container_image
    assert image.endswith(f":{beam.__version__}"), image  # The SDK container matches the pinned Beam.
    staged = {
        beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(d.role_payload).staged_name
        for d in env.dependencies
    }
    assert "workflow.tar.gz" in staged  # The sdist of setup.py, which workers pip-install.
    names = {t.unique_name for t in proto.components.transforms.values()}
    for step in ("ReadPetsFiles/PairByName", "PrepareExamples", "Report", "WriteShards", "Finalize"):
        assert f"BuildTFRecords/{step}" in names
    # The options the job would be submitted with (Dataflow fills the API environment at submission).
    cloud = job.options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region) == ("test-project", "europe-west4")
    assert cloud.temp_location.startswith("gs://beam-seg-test/tmp/beamapp-")
    assert job.options.view_as(WorkerOptions).machine_type == "n2-standard-4"
    assert job.options.view_as(SetupOptions).setup_file.endswith("setup.py")
    assert not list(bucket.client.list_blobs(bucket, prefix="df-out/"))  # Nothing ran.
