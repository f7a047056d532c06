"""run_dataflow.sh: the local default end to end, the --gcp path offline, its preflight checks, the CI workflow.

Real here: the script itself (bash, in a temporary copy of the repository), every stage it runs on this machine
(Beam, TensorFlow, publish's dry run), Beam's DataflowRunner translating stages 1 and 3 into Dataflow jobs with
its own ``--dry_run`` (built, not submitted), every gs:// read and write (the gcp-storage-emulator of
``conftest.gcs_emulator``) and google-auth reading Application Default Credentials from
``GOOGLE_APPLICATION_CREDENTIALS`` (a file whose access token never expires, since nothing here can mint one).

Faked, and why: ``gcloud`` (``tests/fake_gcloud.py``; the real CLI needs a Google account and the network: the fake
logs every call, forwards ``storage ls/cp`` to the emulator and answers auth, Cloud Build, Artifact Registry and
Vertex AI calls), ``curl`` for ``--download`` (the official archives are ~800 MB on the network; the fake serves
the small sample archives) and ``nvidia-smi`` (no GPU on this machine). All three are put first on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys

import apache_beam as beam
import pytest
import worker_deps
import yaml
from conftest import REPO_ROOT
from packaging.requirements import Requirement

SCRIPT = "run_dataflow.sh"
BUCKET = "beam-seg-run"
PROJECT, REGION = "test-project", "europe-west4"
FAKE_TOKEN = "hf_FAKEtoken_never_printed_0123456789"
PY_MINOR = f"{sys.version_info[0]}.{sys.version_info[1]}"
SDK_IMAGE = f"apache/beam_python{PY_MINOR}_sdk:{beam.__version__}"


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The repository's tracked (and new, not ignored) files, copied: the script runs from a clean checkout."""
    dst = tmp_path_factory.mktemp("repo")
    names = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, names):
        src = os.path.join(REPO_ROOT, name)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(dst / name), exist_ok=True)
            shutil.copy2(src, dst / name)
    return str(dst)


def _script_settings() -> list[str]:
    """The environment variables run_dataflow.sh reads as settings (``NAME="${NAME:-...}"``)."""
    with open(os.path.join(REPO_ROOT, SCRIPT)) as f:
        return re.findall(r'^([A-Z_]+)="\$\{\1:-', f.read(), flags=re.M)


def _base_env(path: list[str]) -> dict[str, str]:
    """This environment minus anything that would change the script's behaviour, with the test venv active."""
    drop = {*_script_settings(), "HF_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "CI"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("CLOUDSDK_", "FAKE_"))}
    env["VIRTUAL_ENV"] = sys.prefix  # bootstrap_venv.sh reuses the active venv (same pins, no install).
    env["PATH"] = os.pathsep.join(path)
    return env


@pytest.fixture(scope="module")
def system_bin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Every program on this machine's PATH except gcloud (this machine has a real one), as symlinks."""
    out = tmp_path_factory.mktemp("sysbin")
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory) or os.path.abspath(directory) == os.path.join(sys.prefix, "bin"):
            continue
        for name in os.listdir(directory):
            target = os.path.join(directory, name)
            if name != "gcloud" and not (out / name).exists() and os.access(target, os.X_OK):
                os.symlink(target, out / name)
    return str(out)


def _write_exe(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture(scope="module")
def fake_bin(tmp_path_factory: pytest.TempPathFactory, pets_dir) -> str:
    """Fake gcloud, curl and nvidia-smi (see the module docstring for why each is faked)."""
    out = str(tmp_path_factory.mktemp("fakebin"))
    _write_exe(
        os.path.join(out, "gcloud"),
        f'#!/bin/sh\nexec "{sys.executable}" "{os.path.join(REPO_ROOT, "tests", "fake_gcloud.py")}" "$@"\n',
    )
    archives = os.path.dirname(pets_dir.archives[0])
    _write_exe(
        os.path.join(out, "curl"),
        f"""#!{sys.executable}
# Fake curl: logs its argv, serves sample archives by the URL's file name (to stdout or -o FILE).
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_CURL_LOG"], "a") as f:
    f.write(json.dumps(args) + "\\n")
url = next(a for a in args if a.startswith("https://"))
data = open(os.path.join({archives!r}, url.rsplit("/", 1)[-1]), "rb").read()
if "-o" in args:
    open(args[args.index("-o") + 1], "wb").write(data)
else:
    sys.stdout.buffer.write(data)
""",
    )
    _write_exe(
        os.path.join(out, "nvidia-smi"),
        """#!/bin/sh
# Fake nvidia-smi -L: $FAKE_GPUS GPUs (default 0, then it fails like the real one without devices).
n="${FAKE_GPUS:-0}"
[ "$n" -gt 0 ] || { echo "No devices were found"; exit 6; }
i=0; while [ "$i" -lt "$n" ]; do echo "GPU $i: Tesla T4 (UUID: GPU-fake-$i)"; i=$((i + 1)); done
""",
    )
    return out


@pytest.fixture(scope="module")
def credentials_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Application Default Credentials holding an access token valid until 2999, so Beam's GcsIO in the stage
    subprocesses authenticates at once (no refresh, no network; the emulator does not check tokens) instead of
    retrying the ADC lookup for ~30 s (conftest.gcs_emulator's in-process cache trick cannot reach a subprocess)."""
    path = tmp_path_factory.mktemp("adc") / "credentials.json"
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "fake.apps.googleusercontent.com",
                "client_secret": "fake",
                "refresh_token": "fake",
                "token": "fake-access-token",
                "expiry": "2999-01-01T00:00:00Z",
            }
        )
    )
    return str(path)


@pytest.fixture(scope="module")
def bucket(gcs_emulator):
    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    client.project = PROJECT
    return client.create_bucket(BUCKET)


@pytest.fixture
def gcp_env(bucket, fake_bin, system_bin, credentials_file, tmp_path) -> dict[str, str]:
    env = _base_env([fake_bin, os.path.join(sys.prefix, "bin"), system_bin])
    env.update(
        STORAGE_EMULATOR_HOST=os.environ["STORAGE_EMULATOR_HOST"],
        GOOGLE_APPLICATION_CREDENTIALS=credentials_file,
        GOOGLE_CLOUD_PROJECT=PROJECT,
        FAKE_GCLOUD_LOG=str(tmp_path / "gcloud.jsonl"),
        FAKE_CURL_LOG=str(tmp_path / "curl.jsonl"),
        VERTEX_POLL_SECONDS="0",
    )
    return env


def run_script(repo: str, args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", SCRIPT, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)


def gcp_args(tmp_path, run_id: str, *extra: str) -> list[str]:
    return [
        "--gcp",
        "--project",
        PROJECT,
        "--region",
        REGION,
        "--bucket",
        f"gs://{BUCKET}",
        "--run_id",
        run_id,
        "--output_dir",
        str(tmp_path / "out"),
        *extra,
    ]


def gcloud_calls(env: dict[str, str]) -> list[list[str]]:
    if not os.path.exists(env["FAKE_GCLOUD_LOG"]):
        return []
    with open(env["FAKE_GCLOUD_LOG"]) as f:
        return [json.loads(line)["argv"] for line in f]


def blobs(bucket, prefix: str) -> list[str]:
    return sorted(b.name for b in bucket.client.list_blobs(bucket, prefix=prefix))


# ------------------------------------------------------------------------------------------- local default


@pytest.fixture(scope="module")
def local_run(repo_copy, system_bin, tmp_path_factory) -> tuple[subprocess.CompletedProcess, str]:
    """The no-flag local pipeline, kept short: 40 sample images, 64 px, one epoch."""
    env = _base_env([os.path.join(sys.prefix, "bin"), system_bin])
    proc = run_script(repo_copy, ["--num_images", "40", "--resize", "64", "--epochs", "1"], env)
    return proc, os.path.join(repo_copy, "outputs")


def test_local_default_runs_every_stage(local_run):
    proc, out = local_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    expected = [
        "sample_data/annotations/list.txt",
        "sample_data/annotations/trimaps",
        "tfrecords/stats.json",
        "tfrecords/errors-00000-of-00001.jsonl",
        "tfrecords/schema.pbtxt",
        "model/saved_model/saved_model.pb",
        "model/model_config.json",
        "model/metrics.json",
        "model/training_curves.png",
        "model/predictions.png",
        "publish/publish_manifest.json",
        "publish/publish_preview/space/app.py",
        "publish/publish_preview/README.md",
        "commands.log",
    ]
    missing = [p for p in expected if not os.path.exists(os.path.join(out, p))]
    assert not missing, missing
    shards = sorted(n for n in os.listdir(os.path.join(out, "tfrecords")) if n.endswith(".tfrecord"))
    assert {n.split("-")[0] for n in shards} == {"train", "val", "test"}, shards
    stats = json.load(open(os.path.join(out, "tfrecords", "stats.json")))
    assert stats["records"] + stats["errors"] == stats["listed"] == 40
    assert json.load(open(os.path.join(out, "publish", "publish_manifest.json")))["status"] == "dry-run"
    assert "mean_iou" in json.load(open(os.path.join(out, "model", "metrics.json")))["val"]
    # The summary and the serve command.
    assert "Outputs:" in proc.stdout
    for line in (f"TFRecords:    {out}/tfrecords", f"model:        {out}/model", "(dry-run)"):
        assert line in proc.stdout
    serve = f"BEAM_SEG_MODEL_DIR={out}/model {sys.prefix}/bin/python {out}/publish/publish_preview/space/app.py"
    assert serve in proc.stdout
    log = open(os.path.join(out, "commands.log")).read()
    for stage in ("sample_data", "tfrecord_gen", "train", "publish"):
        assert f"python -m beam_seg.{stage} " in log


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--resize", "100"], "python -m beam_seg.train: --image_size 100: image size 100 is not a multiple of 16"),
        (["--train_args", "--epoch 3"], "python -m beam_seg.train: unknown flag --epoch (did you mean --epochs?)"),
        (["--model_repo", "bad//repo"], "python -m beam_seg.publish: --model_repo 'bad//repo' is not a valid repo id"),
        (["--publish_version", "main"], "python -m beam_seg.publish: --version 'main' cannot name a tag and a branch"),
        (["--resize", "4", "--stages", "data"], "python -m beam_seg.tfrecord_gen: --resize 4 is out of range"),
    ],
)
def test_flags_a_later_stage_refuses_stop_the_run_before_stage_1(repo_copy, system_bin, tmp_path, args, line):
    env = _base_env([os.path.join(sys.prefix, "bin"), system_bin])
    out = tmp_path / "out"
    proc = run_script(repo_copy, ["--num_images", "12", "--output_dir", str(out), *args], env, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.strip().splitlines()[-1].startswith(line), proc.stderr
    assert not (out / "sample_data").exists() and not (out / "tfrecords").exists()  # Nothing ran.


# ------------------------------------------------------------------------------------ incomplete stage outputs


INCOMPLETE_CASES = [
    ("local-train", ["--stages", "train,publish"], "tfrecords/stats.json", "data", "data,train,publish"),
    ("local-publish", ["--stages", "publish"], "model/model_config.json", "train", "train,publish"),
    ("gcp-train", ["--stages", "train", "--train_on", "vertex"], "tfrecords/stats.json", "data", "data,train"),
    ("gcp-publish", ["--stages", "publish"], "model/model_config.json", "train", "train,publish"),
]


@pytest.mark.parametrize(
    ("case", "args", "marker", "stage", "stages"), INCOMPLETE_CASES, ids=[c[0] for c in INCOMPLETE_CASES]
)
def test_a_stage_never_starts_on_an_incomplete_output_of_the_one_before(
    repo_copy, system_bin, gcp_env, bucket, tmp_path, case, args, marker, stage, stages
):
    """No stats.json before training, no model_config.json before publishing: one line, exit 2, nothing run."""
    out = tmp_path / "out"
    if case.startswith("gcp"):
        run_id = f"ci-incomplete-{case}"
        env, root, rerun = gcp_env, f"gs://{BUCKET}/{run_id}", f"--run_id {run_id} --stages {stages}"
        # What a killed stage leaves: its other outputs, without the file it writes last.
        killed = "tfrecords/train-00000-of-00001.tfrecord" if stage == "data" else "model/saved_model/saved_model.pb"
        bucket.blob(f"{run_id}/{killed}").upload_from_string(b"partial")
        args = gcp_args(tmp_path, run_id, *args)
    else:
        env, root, rerun = _base_env([os.path.join(sys.prefix, "bin"), system_bin]), str(out), f"--stages {stages}"
        killed = out / ("tfrecords/train-00000-of-00001.tfrecord" if stage == "data" else "model/saved_model.pb")
        killed.parent.mkdir(parents=True)
        killed.write_bytes(b"partial")
        args = ["--output_dir", str(out), *args]
    proc = run_script(repo_copy, args, env, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    directory, name = f"{root}/{marker}".rsplit("/", 1)
    expected = (
        f"run_dataflow.sh: {directory}/{name} does not exist: {directory} is not a complete output of stage {stage} "
        f"({name} is written last); run that stage first, e.g. this command with {rerun}"
    )
    assert proc.stderr.splitlines() == [expected], proc.stderr
    assert "==> stage" not in proc.stdout  # Nothing ran: no training, no Vertex AI job, no publish.
    log = (out / "runs" / run_id / "commands.log") if case.startswith("gcp") else (out / "commands.log")
    assert "beam_seg.train" not in log.read_text() and "beam_seg.publish" not in log.read_text()
    if case.startswith("gcp"):
        assert not [c for c in gcloud_calls(env) if c[0] in ("ai", "builds", "artifacts")]


# ------------------------------------------------------------------------------------------ GCP, offline


def _seed_model(bucket, model_dir: str, prefix: str) -> None:
    """What a finished stage 2 leaves in gs://B/<run_id>/model (from the local run: a real SavedModel)."""
    for root, dirs, files in os.walk(model_dir):
        dirs[:] = [d for d in dirs if d != "checkpoints"]
        for name in files:
            path = os.path.join(root, name)
            bucket.blob(f"{prefix}/{os.path.relpath(path, model_dir)}").upload_from_filename(path)


def _seed_tfrecords(bucket, run_id: str) -> None:
    """The file a finished stage 1 writes last in gs://B/<run_id>/tfrecords (stage 2 checks only that it is there)."""
    bucket.blob(f"{run_id}/tfrecords/stats.json").upload_from_string(b"{}")


def test_gcp_dry_run_builds_both_dataflow_jobs_and_the_vertex_job(
    repo_copy, local_run, bucket, gcp_env, pets_dir, tmp_path
):
    assert local_run[0].returncode == 0, "the local run failed: see test_local_default_runs_every_stage"
    run_id = "ci-dry-1"
    root = f"gs://{BUCKET}/{run_id}"
    _seed_model(bucket, os.path.join(local_run[1], "model"), f"{run_id}/model")
    env = {**gcp_env, "HF_TOKEN": FAKE_TOKEN}
    args = gcp_args(
        tmp_path,
        run_id,
        "--dry_run",
        "--download",
        "--train_on",
        "vertex",
        "--vertex_machine_type",
        "g2-standard-24",
        "--accelerator_type",
        "NVIDIA_L4",
        "--accelerator_count",
        "2",
        "--worker_machine_type",
        "n2-standard-2",
        "--max_workers",
        "3",
        "--hf_user",
        "ci-user",
        "--resize",
        "64",
        "--epochs",
        "3",
    )
    proc = run_script(repo_copy, args, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "out" / "runs" / run_id

    # --download: both official URLs fetched (fake curl) and streamed into gs://B/<run_id>/input.
    fetched = [json.loads(line) for line in open(env["FAKE_CURL_LOG"])]
    assert [a[-1] for a in fetched] == [
        f"https://thor.robots.ox.ac.uk/datasets/pets/{n}" for n in ("images.tar.gz", "annotations.tar.gz")
    ]
    assert blobs(bucket, f"{run_id}/input/") == [f"{run_id}/input/annotations.tar.gz", f"{run_id}/input/images.tar.gz"]
    assert (
        bucket.blob(f"{run_id}/input/images.tar.gz").download_as_bytes()
        == open(next(a for a in pets_dir.archives if a.endswith("images.tar.gz")), "rb").read()
    )

    # The Dataflow workers' image: docker/worker.Dockerfile on Beam's SDK image of the installed Beam and Python,
    # tagged by what decides its dependencies, its Cloud Build recorded (build arguments through a build config).
    worker_image = json.load(open(run_dir / "dataflow_tfrecord_gen.json"))["sdk_container_image"]
    assert re.fullmatch(
        rf"{REGION}-docker\.pkg\.dev/{PROJECT}/beam-seg/worker:{re.escape(beam.__version__)}-py{PY_MINOR}-[0-9a-f]{{12}}",
        worker_image,
    ), worker_image
    worker_context = run_dir / "worker_image_context"
    assert (worker_context / "Dockerfile").read_text() == open(
        os.path.join(repo_copy, "docker", "worker.Dockerfile")
    ).read()
    assert sorted(str(p.relative_to(worker_context)) for p in worker_context.rglob("*") if p.is_file()) == [
        "Dockerfile",
        "beam_seg/__init__.py",
        "cloudbuild.yaml",
        "constraints.txt",
        "pyproject.toml",
        "setup.py",
    ]
    build = yaml.safe_load((worker_context / "cloudbuild.yaml").read_text())
    assert build["images"] == [worker_image]
    (step,) = build["steps"]
    assert step["args"] == [
        "build",
        f"--build-arg=PYTHON_VERSION={PY_MINOR}",
        f"--build-arg=BEAM_VERSION={beam.__version__}",
        f"--tag={worker_image}",
        ".",
    ]
    assert (
        f"# dry run, not run: gcloud builds submit {worker_context} --project={PROJECT} "
        f"--config={worker_context}/cloudbuild.yaml"
    ) in (run_dir / "commands.log").read_text()
    assert f"worker image: {worker_image}" in proc.stdout

    # Stages 1 and 3: Dataflow jobs translated by Beam's DataflowRunner with --dry_run, as recorded.
    for stage, job_name in (("tfrecord_gen", f"beam-seg-data-{run_id}"), ("publish", f"beam-seg-publish-{run_id}")):
        job = json.load(open(run_dir / f"dataflow_{stage}.json"))
        assert job["runner"] == "DataflowRunner" and job["dry_run"] and not job["submitted"]
        assert job["job_type"] == "JOB_TYPE_BATCH"
        assert (job["project"], job["region"], job["job_name"]) == (PROJECT, REGION, job_name)
        assert job["temp_location"].startswith(f"{root}/tmp"), job["temp_location"]
        assert job["staging_location"].startswith(f"{root}/staging"), job["staging_location"]
        assert job["setup_file"] == os.path.join(repo_copy, "setup.py")
        assert "workflow.tar.gz" in job["staged_files"]  # The package's sdist, which workers pip-install.
        assert job["sdk_container_image"] == worker_image  # The worker image the script built, for both jobs.
        assert job["environment_images"] == [worker_image]
        assert (job["machine_type"], job["max_num_workers"]) == ("n2-standard-2", 3)
        # What the workers' pip install of the staged package resolves: the pinned light set, no training package.
        names = worker_deps.names(Requirement(r) for r in job["worker_requirements"])
        assert {"apache-beam", "huggingface-hub", "pillow", "numpy"} <= names
        assert not names & worker_deps.TRAINING, names
    data_job = json.load(open(run_dir / "dataflow_tfrecord_gen.json"))
    assert {"BuildTFRecords/ReadPetsFiles", "BuildTFRecords/WriteShards"} <= set(data_job["steps"])
    argv = " ".join(data_job["argv"])
    assert f"--input {root}/input --output_dir {root}/tfrecords --resize 64" in argv
    publish_job = json.load(open(run_dir / "dataflow_publish.json"))
    assert {"PublishModel/UploadChunks", "PublishModel/CommitVersion", "PublishModel/PushSpace"} <= set(
        publish_job["steps"]
    )
    argv = " ".join(publish_job["argv"])
    assert (
        f"--model_dir {root}/model --model_repo ci-user/beam-seg-pets --space_repo ci-user/beam-seg-pets-demo" in argv
    )
    assert f"--output_dir {root}/publish --data_dir {root}/tfrecords --bless_against auto" in argv
    assert f"--version v{run_id}" in argv
    # The workers' token: a Secret Manager version (recorded in this dry run), never the token itself.
    assert f"--hf_token_secret projects/{PROJECT}/secrets/beam-seg-hf-token/versions/latest" in argv
    assert (
        f"# dry run, not run: gcloud secrets versions add beam-seg-hf-token --project={PROJECT} --data-file=-"
        in (run_dir / "commands.log").read_text()
    )
    assert not blobs(bucket, f"{run_id}/tfrecords") and not blobs(bucket, f"{run_id}/publish")  # Nothing ran.

    # Stage 2: the Vertex AI job spec, written to the run dir and to gs://B/<run_id>/vertex, submission recorded.
    spec_text = (run_dir / "vertex_job.yaml").read_text()
    assert bucket.blob(f"{run_id}/vertex/vertex_job.yaml").download_as_text() == spec_text
    spec = yaml.safe_load(spec_text)
    (pool,) = spec["workerPoolSpecs"]
    assert pool["machineSpec"] == {
        "machineType": "g2-standard-24",
        "acceleratorType": "NVIDIA_L4",
        "acceleratorCount": 2,
    }
    assert pool["replicaCount"] == 1
    image = pool["containerSpec"]["imageUri"]
    assert re.fullmatch(rf"{REGION}-docker\.pkg\.dev/{PROJECT}/beam-seg/train:0\.1\.0-[0-9a-f]{{12}}", image), image
    assert pool["containerSpec"]["args"] == [
        "--data_dir",
        f"{root}/tfrecords",
        "--output_dir",
        f"{root}/model",
        "--image_size",
        "64",
        "--epochs",
        "3",
        "--resume",
    ]
    assert spec["baseOutputDirectory"] == {"outputUriPrefix": f"{root}/vertex"}
    context = run_dir / "train_image_context"
    assert (context / "Dockerfile").read_text() == open(os.path.join(repo_copy, "docker", "train.Dockerfile")).read()
    assert (context / "beam_seg" / "train" / "__main__.py").exists() and (context / "constraints.txt").exists()

    # gcloud: only bucket reads/writes were run; the image build and the Vertex job were only recorded.
    calls = gcloud_calls(env)
    commands = [" ".join(c[:3]) for c in calls]
    assert calls[0] == ["storage", "ls", f"--project={PROJECT}", f"gs://{BUCKET}"]  # The reachability preflight.
    assert ["storage", "cp", f"--project={PROJECT}", "-", f"{root}/input/images.tar.gz.part"] in calls
    assert [
        "storage",
        "mv",
        f"--project={PROJECT}",
        f"{root}/input/images.tar.gz.part",
        f"{root}/input/images.tar.gz",
    ] in calls
    assert [
        "storage",
        "cp",
        f"--project={PROJECT}",
        str(run_dir / "vertex_job.yaml"),
        f"{root}/vertex/vertex_job.yaml",
    ] in calls
    assert "auth list" not in " | ".join(commands)  # GOOGLE_APPLICATION_CREDENTIALS is set.
    assert not [c for c in commands if c.startswith(("builds", "ai", "artifacts"))], commands
    log = (run_dir / "commands.log").read_text()
    assert f"# dry run, not run: gcloud builds submit {context} --project={PROJECT} --tag={image}" in log
    assert (
        f"# dry run, not run: gcloud ai custom-jobs create --project={PROJECT} --region={REGION} "
        f"--display-name=beam-seg-train-{run_id} --config={run_dir}/vertex_job.yaml"
    ) in log
    assert f"Re-run a stage of this run: {SCRIPT} --gcp" in proc.stdout

    # The token is never printed nor written.
    assert FAKE_TOKEN not in proc.stdout + proc.stderr
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix in (".log", ".json", ".yaml"):
            assert FAKE_TOKEN not in path.read_text(errors="replace"), path


def test_gcp_dry_run_with_a_given_sdk_container_image_builds_no_worker_image(repo_copy, gcp_env, tmp_path):
    """An explicit --sdk_container_image wins: stage 1's job runs on it and no worker image is built."""
    run_id = "ci-given-image"
    proc = run_script(
        repo_copy,
        gcp_args(tmp_path, run_id, "--dry_run", "--download", "--stages", "data", "--sdk_container_image", SDK_IMAGE),
        gcp_env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = tmp_path / "out" / "runs" / run_id
    job = json.load(open(run_dir / "dataflow_tfrecord_gen.json"))
    assert job["sdk_container_image"] == SDK_IMAGE and job["environment_images"] == [SDK_IMAGE]
    assert not (run_dir / "worker_image_context").exists()
    assert "builds submit" not in (run_dir / "commands.log").read_text()
    assert "worker image:" not in proc.stdout


def test_gcp_local_training_dry_run_uses_the_gpus_and_waits_for_a_model(repo_copy, gcp_env, tmp_path):
    env = {**gcp_env, "FAKE_GPUS": "2"}
    args = gcp_args(
        tmp_path,
        "ci-local-1",
        "--dry_run",
        "--stages",
        "train,publish",
        "--gpus",
        "2",
        "--epochs",
        "16",
        "--train_args",
        "--base_filters 16",
    )
    proc = run_script(repo_copy, args, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    root = f"gs://{BUCKET}/ci-local-1"
    train = (
        f"dry run, not run: env CUDA_VISIBLE_DEVICES=0,1 python -m beam_seg.train --data_dir {root}/tfrecords "
        f"--output_dir {root}/model --image_size 128 --epochs 16 --resume --base_filters 16"
    )
    assert train in proc.stdout
    assert f"stage 3 skipped in this dry run: no trained model in {root}/model" in proc.stdout


@pytest.mark.parametrize(
    ("states", "extra", "ok"),
    [
        ("JOB_STATE_PENDING,JOB_STATE_RUNNING,JOB_STATE_SUCCEEDED", [], True),
        ("JOB_STATE_RUNNING,JOB_STATE_FAILED", ["--train_image", "example.com/beam-seg/train:v1"], False),
    ],
    ids=["succeeds-after-building-the-image", "fails-with-a-given-image"],
)
def test_gcp_vertex_training_submits_and_waits(repo_copy, gcp_env, bucket, tmp_path, states, extra, ok):
    env = {**gcp_env, "FAKE_VERTEX_STATES": states, "FAKE_GCLOUD_ACCOUNT": "ci@example.com"}
    del env["GOOGLE_APPLICATION_CREDENTIALS"]  # So the active-account check runs (and passes).
    run_id = f"ci-vertex-{'ok' if ok else 'fail'}"
    _seed_tfrecords(bucket, run_id)
    proc = run_script(repo_copy, gcp_args(tmp_path, run_id, "--stages", "train", "--train_on", "vertex", *extra), env)
    run_dir = tmp_path / "out" / "runs" / run_id
    calls = gcloud_calls(env)
    job = f"projects/123/locations/{REGION}/customJobs/42"
    assert calls[0][:2] == ["auth", "list"]
    create = [c for c in calls if c[:3] == ["ai", "custom-jobs", "create"]]
    assert create == [
        [
            "ai",
            "custom-jobs",
            "create",
            f"--project={PROJECT}",
            f"--region={REGION}",
            f"--display-name=beam-seg-train-{run_id}",
            f"--config={run_dir}/vertex_job.yaml",
            "--format=value(name)",
        ]
    ]
    describes = [c for c in calls if c[:3] == ["ai", "custom-jobs", "describe"]]
    assert describes and all(c[3] == job for c in describes)
    assert len(describes) == len(states.split(","))
    builds = [c for c in calls if c[0] in ("builds", "artifacts")]
    image = yaml.safe_load((run_dir / "vertex_job.yaml").read_text())["workerPoolSpecs"][0]["containerSpec"]["imageUri"]
    if extra:
        assert image == extra[1] and not builds  # --train_image skips the build.
    else:
        assert [c[:3] for c in builds] == [
            ["artifacts", "docker", "images"],
            ["artifacts", "repositories", "describe"],
            ["builds", "submit", str(run_dir / "train_image_context")],
        ]
        assert builds[-1][3:] == [f"--project={PROJECT}", f"--tag={image}"]
    if ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "JOB_STATE_SUCCEEDED" in proc.stdout and (run_dir / "vertex_job_name").read_text().strip() == job
    else:
        assert proc.returncode != 0
        assert f"Vertex AI job {job} ended in JOB_STATE_FAILED" in proc.stderr


def test_gcp_vertex_training_rerun_waits_for_the_job_still_running(repo_copy, gcp_env, bucket, tmp_path):
    """Re-running stage 2 of a run whose Vertex AI job is still running waits for it instead of submitting twice."""
    env = {**gcp_env, "FAKE_VERTEX_STATES": "JOB_STATE_RUNNING,JOB_STATE_RUNNING,JOB_STATE_SUCCEEDED"}
    _seed_tfrecords(bucket, "ci-vertex-rerun")
    run_dir = tmp_path / "out" / "runs" / "ci-vertex-rerun"
    run_dir.mkdir(parents=True)
    job = f"projects/123/locations/{REGION}/customJobs/41"
    (run_dir / "vertex_job_name").write_text(job + "\n")
    args = gcp_args(tmp_path, "ci-vertex-rerun", "--stages", "train", "--train_on", "vertex", "--train_image", "x/y:z")
    proc = run_script(repo_copy, args, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    calls = gcloud_calls(env)
    assert not [c for c in calls if c[:3] == ["ai", "custom-jobs", "create"]]
    assert [c[3] for c in calls if c[:3] == ["ai", "custom-jobs", "describe"]] == [job] * 3
    assert f"this run's Vertex AI job {job} is still JOB_STATE_RUNNING" in proc.stdout


# --------------------------------------------------------------------------------------- GCP preflight


PREFLIGHT_CASES = [
    ("no-gcloud", [], {"PATH": None}, "gcloud is not on PATH"),
    ("no-account", [], {"GOOGLE_APPLICATION_CREDENTIALS": None, "FAKE_GCLOUD_ACCOUNT": ""}, "no active gcloud account"),
    ("unreachable-bucket", ["--bucket", "gs://no-such-bucket"], {}, "bucket gs://no-such-bucket is not reachable"),
    (
        "gpu-missing",
        ["--train_on", "local", "--gpus", "1"],
        {"FAKE_GPUS": "0"},
        "--gpus 1 asked but 'nvidia-smi -L' lists 0 GPU(s)",
    ),
    ("publish-without-token", ["--hf_user", "someone"], {}, "a real publish (--hf_user/--model_repo) needs HF_TOKEN"),
    (
        "beam-mismatch",
        ["--sdk_container_image", f"apache/beam_python{PY_MINOR}_sdk:2.60.0"],
        {},
        f"has tag 2.60.0 but the installed apache-beam is {beam.__version__}",
    ),
    (
        "python-mismatch",
        ["--sdk_container_image", f"apache/beam_python3.9_sdk:{beam.__version__}"],
        {},
        f"is for Python 3.9 but this venv runs Python {PY_MINOR}",
    ),
    ("no-project", [], {}, "--project is required with --gcp"),
    ("bucket-not-gs", ["--bucket", "my-bucket"], {}, "--bucket 'my-bucket' must start with gs://"),
]


@pytest.mark.parametrize(
    ("case", "args", "env_change", "message"), PREFLIGHT_CASES, ids=[c[0] for c in PREFLIGHT_CASES]
)
def test_gcp_preflight_fails_fast_with_one_line(
    repo_copy, gcp_env, fake_bin, system_bin, tmp_path, case, args, env_change, message
):
    env = dict(gcp_env)
    for key, value in env_change.items():
        env.pop(key, None)
        if value is not None:
            env[key] = value
    if case == "no-gcloud":  # The fakes without gcloud, and this machine's programs without its real gcloud.
        no_gcloud = tmp_path / "bin"
        no_gcloud.mkdir()
        for name in ("curl", "nvidia-smi"):
            os.symlink(os.path.join(fake_bin, name), no_gcloud / name)
        env["PATH"] = os.pathsep.join([str(no_gcloud), os.path.join(sys.prefix, "bin"), system_bin])
    base = gcp_args(tmp_path, f"ci-preflight-{case}")
    if case == "no-project":
        base = base[:1] + base[3:]  # Without "--project P".
    proc = run_script(repo_copy, [*base, *args], env, timeout=120)
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("run_dataflow.sh: preflight: ") and message in lines[-1], proc.stderr
    assert "==> stage" not in proc.stdout  # Nothing ran.


# --------------------------------------------------------------------------------- interface and CI files


def _script_flags() -> set[str]:
    """The flags of the script's option parser (its case arms)."""
    text = open(os.path.join(REPO_ROOT, SCRIPT)).read()
    parser = text[text.index("while [[ $# -gt 0 ]]; do") : text.index("done", text.index("while [[ $# -gt 0 ]]; do"))]
    return {flag for arm in re.findall(r"^\s*((?:-[-\w]+\|?)+)\)", parser, flags=re.M) for flag in arm.split("|")}


def test_help_lists_every_flag_and_nothing_else():
    proc = subprocess.run(["bash", os.path.join(REPO_ROOT, SCRIPT), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    documented = set(re.findall(r"^\s+(--\w+|-h)", proc.stdout, flags=re.M)) | {"--help"}
    assert documented == _script_flags()
    assert len(_script_flags()) > 30


def test_workflow_runs_the_script_with_flags_it_accepts():
    with open(os.path.join(REPO_ROOT, ".github", "workflows", "pipeline.yml")) as f:
        workflow = yaml.safe_load(f)
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as the boolean true.
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert {"project", "region", "bucket", "model_repo", "hf_user", "space_repo", "train_on"} <= set(inputs)
    (job,) = workflow["jobs"].values()
    uses = [s.get("uses", "") for s in job["steps"]]
    for action in (
        "actions/checkout@",
        "actions/setup-python@",
        "google-github-actions/auth@v2",
        "google-github-actions/setup-gcloud@v2",
    ):
        assert any(u.startswith(action) for u in uses), uses
    auth = next(s for s in job["steps"] if s.get("uses", "").startswith("google-github-actions/auth@"))
    assert auth["with"]["credentials_json"] == "${{ secrets.GCP_SA_KEY }}"
    python = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
    assert str(python["with"]["python-version"]) == "3.11"
    (step,) = [s for s in job["steps"] if "run_dataflow.sh" in s.get("run", "")]
    assert "${{ secrets.HF_TOKEN }}" in json.dumps(workflow)
    run = step["run"]
    assert "./run_dataflow.sh" in run and "--gcp" in run
    passed = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_]*", run))
    assert {"--gcp", "--project", "--region", "--bucket"} <= passed
    assert passed <= _script_flags(), passed - _script_flags()
    assert "${{ inputs." not in run  # Inputs reach the shell through env:, never pasted into the script.


def test_training_dockerfile_matches_the_pins():
    dockerfile = open(os.path.join(REPO_ROOT, "docker", "train.Dockerfile")).read()
    pins = dict(re.findall(r"^([\w.-]+)==(\S+)$", open(os.path.join(REPO_ROOT, "constraints.txt")).read(), re.M))
    assert re.search(rf"^ARG TF_VERSION={re.escape(pins['tensorflow'])}$", dockerfile, re.M)
    assert "FROM tensorflow/tensorflow:${TF_VERSION}-gpu" in dockerfile
    assert "pip install -c constraints.txt '.[train]'" in dockerfile
    assert 'ENTRYPOINT ["python", "-m", "beam_seg.train"]' in dockerfile


def test_worker_dockerfile_matches_the_pins():
    """Its default build arguments are the workflow's Python and the pinned Beam; it installs no extra."""
    dockerfile = open(os.path.join(REPO_ROOT, "docker", "worker.Dockerfile")).read()
    pins = dict(re.findall(r"^([\w.-]+)==(\S+)$", open(os.path.join(REPO_ROOT, "constraints.txt")).read(), re.M))
    workflow = open(os.path.join(REPO_ROOT, ".github", "workflows", "pipeline.yml")).read()
    assert re.search(rf"^ARG BEAM_VERSION={re.escape(pins['apache-beam'])}$", dockerfile, re.M)
    python = re.search(r"^ARG PYTHON_VERSION=(\S+)$", dockerfile, re.M).group(1)
    assert re.search(rf"python-version: \"{re.escape(python)}\"", workflow), python
    assert "FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION}" in dockerfile
    assert "pip install -c constraints.txt ." in dockerfile and "[train" not in dockerfile


def test_shell_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        if os.environ.get("CI"):
            pytest.fail("shellcheck is not installed (run_tests.sh installs Debian's shellcheck when it can)")
        pytest.skip("shellcheck is not installed")
    scripts = [
        SCRIPT,
        "run_tests.sh",
        *sorted(
            os.path.join("scripts", n) for n in os.listdir(os.path.join(REPO_ROOT, "scripts")) if n.endswith(".sh")
        ),
    ]
    proc = subprocess.run(["shellcheck", *scripts], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
