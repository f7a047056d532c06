"""End-to-end tests of ``python -m beam_seg.publish``: real Beam pipelines (in-memory DirectRunner) driving the
real ``huggingface_hub`` client over HTTP against the ``HubServer`` test double, with injected faults.

The model directory is a stand-in training output: a tiny real SavedModel with the export's ``serving_default``
contract (1-D string tensor of encoded images -> ``mask`` uint8 [N,S,S], ``probabilities`` float32 [N,S,S,3]),
``model_config.json``, ``metrics.json``, ``history.json``, two PNGs and a ``checkpoints/`` folder that must not
be uploaded.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import IN_MEMORY, REPO_ROOT
from hubserver import DEFAULT_TOKEN, DEFAULT_USER, HubServer

from beam_seg import cli
from beam_seg.hub import commits, retry
from beam_seg.publish import job, manifest, options, pipeline, plan, uploads

MODEL_REPO = f"{DEFAULT_USER}/pets-unet"
SPACE_REPO = f"{DEFAULT_USER}/pets-demo"
IMAGE_SIZE = 8
COMMIT_PATH = r"^/api/models/.*/commit/"
# A PNG (signature + junk) that happens to contain placeholder-looking text: it must stay byte-identical.
BINARY_EXAMPLE = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR$MODEL_REPO_ID\x00\xff\xfe" + bytes(range(256))


def _png(color: tuple[int, int, int], size: int = 16) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def make_model_dir(root: Path, *, val_miou: float = 0.91) -> Path:
    """Writes a stand-in training output directory under ``root``."""
    import tensorflow as tf

    class Segmenter(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
            def decode(data: tf.Tensor) -> tf.Tensor:
                image = tf.io.decode_image(data, channels=3, expand_animations=False)
                return tf.image.resize(tf.cast(image, tf.float32), [IMAGE_SIZE, IMAGE_SIZE])

            images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec([IMAGE_SIZE, IMAGE_SIZE, 3]))
            n = tf.shape(images)[0]
            return {
                "mask": tf.zeros([n, IMAGE_SIZE, IMAGE_SIZE], tf.uint8),
                "probabilities": tf.fill([n, IMAGE_SIZE, IMAGE_SIZE, 3], 1.0 / 3.0),
            }

    module = Segmenter()
    tf.saved_model.save(module, str(root / "saved_model"), signatures={"serving_default": module.serve})
    classes = ["pet", "background", "border"]
    per_class = {"pet": val_miou + 0.02, "background": val_miou + 0.01, "border": val_miou - 0.03}
    metrics = {
        "evaluated_weights": "final (epoch 3)",
        "final_epoch": 3,
        "val": {"mean_iou": val_miou, "per_class_iou": per_class, "pixel_accuracy": 0.95, "loss": 0.2},
        "test": {"mean_iou": val_miou - 0.01, "per_class_iou": per_class, "pixel_accuracy": 0.94, "loss": 0.21},
    }
    config = {
        "image_size": IMAGE_SIZE,
        "classes": classes,
        "palette": {"pet": [255, 127, 14], "background": [31, 119, 180], "border": [255, 221, 0]},
        "model": {"architecture": "unet", "base_filters": 4, "depth": 2},
        "training": {"epochs": 3, "batch_size": 2, "learning_rate": 0.003, "loss": "ce_dice"},
        "versions": {"tensorflow": tf.__version__},
    }
    (root / "model_config.json").write_text(json.dumps(config, indent=2))
    (root / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (root / "history.json").write_text(json.dumps([{"epoch": e, "loss": 1.0 / e} for e in (1, 2, 3)]))
    (root / "training_curves.png").write_bytes(_png((10, 200, 30)))
    (root / "predictions.png").write_bytes(_png((200, 10, 30)))
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "ckpt-3.index").write_bytes(b"\x00checkpoint")
    return root


@pytest.fixture(scope="session")
def model_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture
def model_dir(model_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model_template, tmp_path / "model"))


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "examples").mkdir(parents=True)
    (root / "README.md").write_text(
        "---\ntitle: $TITLE\nsdk: gradio\napp_file: app.py\nmodels:\n- $MODEL_REPO_ID\n---\n\n"
        "Serving [$MODEL_REPO_ID]($MODEL_REPO_URL) version $MODEL_VERSION (cost: $$5, home: $HOME).\n"
    )
    (root / "app.py").write_text(
        'MODEL_REPO_ID = "$MODEL_REPO_ID"\nMODEL_REVISION = "${MODEL_REVISION}"\nMODEL_VERSION = "$MODEL_VERSION"\n'
    )
    (root / "requirements.txt").write_text("gradio\ntensorflow\nhuggingface_hub\n")
    (root / "examples" / "cat.png").write_bytes(BINARY_EXAMPLE)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\x00cache")
    return root


@pytest.fixture
def fast_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own backoff, shortened (``Retry-After`` from the server is still honoured)."""
    monkeypatch.setattr(retry, "DEFAULT_RETRY", retry.RetryPolicy(max_attempts=3, base_delay_s=0.05, max_delay_s=0.1))


@pytest.fixture
def hub_env(hub_client_env: HubServer, monkeypatch: pytest.MonkeyPatch, fast_retry: None) -> HubServer:
    """The server, the client pointed at it, and ``HF_TOKEN`` set to the test user's write token."""
    monkeypatch.setenv("HF_TOKEN", DEFAULT_TOKEN)
    return hub_client_env


def _argv(model_dir: Path, *extra: str, app_dir: Path | None = None, version: str = "v1") -> list[str]:
    """The publish command line; without the baseline gate, which needs real models (tests/test_publish_baseline.py)."""
    args = ["--model_dir", str(model_dir), "--model_repo", MODEL_REPO, "--version", version, *IN_MEMORY]
    args += ["--bless_against", "none", *extra]
    if app_dir is not None:
        args += ["--space_repo", SPACE_REPO, "--app_dir", str(app_dir), "--placeholder", "TITLE=Pet segmentation"]
    return args


def _manifest(model_dir: Path) -> dict:
    return json.loads((model_dir / manifest.MANIFEST_NAME).read_text())


def _published_files(model_dir: Path) -> dict[str, bytes]:
    """What the model repo must hold: the directory minus checkpoints/ and this stage's outputs."""
    out = {}
    for path in sorted(model_dir.rglob("*")):
        rel = path.relative_to(model_dir).as_posix()
        ours = rel.startswith(("checkpoints/", "publish_preview/")) or rel == manifest.MANIFEST_NAME
        if path.is_file() and not ours:
            out[rel] = path.read_bytes()
    return out


def _model_commits(server: HubServer) -> int:
    return server.count_requests("POST", COMMIT_PATH, 200)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------ the happy path


def test_full_publish_round_trip(hub_env, model_dir, app_dir, tmp_path, caplog, capsys):
    from huggingface_hub import HfApi, ModelCard, snapshot_download

    from beam_seg.loader import load_model

    caplog.set_level(logging.DEBUG)
    server = hub_env
    assert job.run(_argv(model_dir, "--chunk_size_mb", "0.02", app_dir=app_dir)) == 0

    doc = _manifest(model_dir)
    sha = doc["model"]["commit_sha"]
    assert doc["status"] == "pushed" and doc["reason"] is None and doc["version"] == "v1"
    assert doc["pipeline"]["chunks"] > 1  # The fan-out really fanned out.
    assert doc["model"]["commits_created"] == 1 and server.commits_created == 2  # One model + one Space commit.
    expected = _published_files(model_dir)
    assert {f["path"] for f in doc["files"]} == set(expected) | {"README.md"}
    assert all(f["action"] == "uploaded" for f in doc["files"])
    lfs = {f["path"]: f["lfs"] for f in doc["files"]}
    assert all(lfs[p] for p in expected if p.startswith("saved_model/")) and lfs["training_curves.png"]
    assert not lfs["model_config.json"] and not lfs["README.md"]
    assert {f["path"]: f["lfs_predicted"] for f in doc["files"]} == lfs
    assert set(doc["durations_s"]) >= {"plan", "create_repos", "upload", "commit", "refs", "space", "total"}
    assert all(v is not None for v in doc["durations_s"].values())
    assert doc["model"]["url"] == f"{server.url}/{MODEL_REPO}"  # As the Hub returned it when the driver created it.
    assert doc["space"]["url"] == f"{server.url}/spaces/{SPACE_REPO}"

    # Byte-identical download of the version; no checkpoints.
    snap = Path(snapshot_download(MODEL_REPO, revision="v1", endpoint=server.url, cache_dir=tmp_path / "dl"))
    downloaded = {p.relative_to(snap).as_posix(): p.read_bytes() for p in snap.rglob("*") if p.is_file()}
    downloaded.pop(".gitattributes")
    card_bytes = downloaded.pop("README.md")
    assert downloaded == expected

    # Tag and branch named after the version point at the manifest's commit, as does main.
    refs = HfApi(endpoint=server.url, token=DEFAULT_TOKEN).list_repo_refs(MODEL_REPO)
    assert {r.name: r.target_commit for r in refs.tags} == {"v1": sha}
    assert {r.name: r.target_commit for r in refs.branches} == {"main": sha, "v1": sha}

    # The model card parses and carries the metrics as a model-index.
    card = ModelCard.load(MODEL_REPO)
    assert card.content.encode() == card_bytes
    assert card.data.library_name and "image-segmentation" in card.data.tags
    results = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results[("val", "mean_iou")] == pytest.approx(0.91) and results[("test", "accuracy")] == pytest.approx(0.94)
    assert "load_model" in card.text and "tf.saved_model.load" in card.text and "learning_rate" in card.text

    # The Space: placeholders replaced in text files only, pinned to the pushed commit.
    space_tree = server.list_files(SPACE_REPO, repo_type="space")
    space_files = {p: server.read_file(SPACE_REPO, p, repo_type="space") for p in space_tree}
    assert set(space_files) == {".gitattributes", "README.md", "app.py", "requirements.txt", "examples/cat.png"}
    assert space_files["examples/cat.png"] == (app_dir / "examples" / "cat.png").read_bytes() == BINARY_EXAMPLE
    app_py = space_files["app.py"].decode()
    assert f'MODEL_REVISION = "{sha}"' in app_py and 'MODEL_VERSION = "v1"' in app_py and MODEL_REPO in app_py
    readme = space_files["README.md"].decode()
    assert "title: Pet segmentation" in readme and f"{server.url}/{MODEL_REPO}" in readme
    assert "$$5" in readme and "$HOME" in readme  # Not ours: left alone.
    assert "$MODEL" not in readme + app_py
    assert doc["space"]["model_revision"] == sha and doc["space"]["model_version"] == "v1"

    # The token never shows up.
    out = capsys.readouterr()
    assert DEFAULT_TOKEN not in caplog.text + out.out + out.err
    assert DEFAULT_TOKEN not in json.dumps(doc)

    # load_model returns a working callable.
    model = load_model(f"hf://{MODEL_REPO}@v1", endpoint=server.url, cache_dir=str(tmp_path / "load"))
    mask, probabilities = model([_png((1, 2, 3), 20), _png((4, 5, 6), 30)])
    assert mask.shape == (2, IMAGE_SIZE, IMAGE_SIZE) and mask.dtype.name == "uint8"
    assert probabilities.shape == (2, IMAGE_SIZE, IMAGE_SIZE, 3) and probabilities.dtype.name == "float32"


def test_republishing_a_version_is_a_no_op(hub_env, model_dir, app_dir):
    server = hub_env
    assert job.run(_argv(model_dir, app_dir=app_dir)) == 0
    first = _manifest(model_dir)
    server.reset_stats()
    assert job.run(_argv(model_dir, app_dir=app_dir)) == 0
    again = _manifest(model_dir)
    assert server.commits_created == 0 and server.bytes_uploaded == 0
    assert again["model"]["commit_sha"] == first["model"]["commit_sha"] and again["model"]["reused_commit"]
    assert again["totals"]["files_uploaded"] == 0 and again["totals"]["files_skipped"] == first["totals"]["files"]
    assert again["space"]["commits_created"] == 0


def test_a_version_with_other_content_is_refused(hub_env, model_dir, caplog):
    server = hub_env
    assert job.run(_argv(model_dir)) == 0
    (model_dir / "history.json").write_text("[]")
    server.reset_stats()
    assert job.run(_argv(model_dir)) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name == "beam_seg.publish.job"]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert "'v1'" in errors[0] and MODEL_REPO in errors[0] and "already exists" in errors[0]
    assert "history.json" in errors[0]
    assert server.commits_created == 0
    doc = _manifest(model_dir)
    assert doc["status"] == "failed" and doc["reason"] == errors[0]


def test_a_version_conflict_is_found_before_any_upload(hub_env, model_dir, caplog):
    """Changed LFS content under an existing version: refused by the driver, before the job sends anything."""
    server = hub_env
    assert job.run(_argv(model_dir)) == 0
    variables = next((model_dir / "saved_model" / "variables").glob("variables.data-*"))
    variables.write_bytes(variables.read_bytes() + b"changed")
    server.reset_stats()
    assert job.run(_argv(model_dir)) == 1
    (line,) = _error_lines(caplog)
    assert "already exists" in line and "variables.data" in line
    assert server.bytes_uploaded == 0 and server.commits_created == 0
    assert server.count_requests("POST", r"\.git/info/lfs/objects/batch") == 0  # No upload step ran.


def test_a_new_version_deletes_stale_files_on_main_but_not_in_old_versions(hub_env, model_dir):
    server = hub_env
    (model_dir / "extra.json").write_text("{}")
    assert job.run(_argv(model_dir, version="v1")) == 0
    (model_dir / "extra.json").unlink()
    assert job.run(_argv(model_dir, version="v2")) == 0
    assert "extra.json" in server.list_files(MODEL_REPO, "v1") and "extra.json" not in server.list_files(MODEL_REPO)
    assert _manifest(model_dir)["deleted"] == ["extra.json"]
    assert server.revision_sha(MODEL_REPO, "v2") == server.revision_sha(MODEL_REPO, "main")


def test_commits_are_split_at_the_per_commit_limit(hub_env, model_dir, monkeypatch):
    server = hub_env
    for i in range(7):
        (model_dir / f"notes-{i}.txt").write_text(f"note {i}\n")
    files = len(_published_files(model_dir)) + 1  # + README.md
    monkeypatch.setattr(commits, "MAX_FILES_PER_COMMIT", 5)
    assert job.run(_argv(model_dir)) == 0
    assert _model_commits(server) == -(-files // 5) > 1
    tree = server.list_files(MODEL_REPO, "v1")
    assert set(tree) - {".gitattributes"} == set(_published_files(model_dir)) | {"README.md"}
    server.reset_stats()
    assert job.run(_argv(model_dir, version="v1")) == 0  # Complete and immutable: nothing more to do.
    assert server.commits_created == 0


def test_each_lfs_file_is_sent_once_by_the_upload_stage(hub_env, model_dir):
    server = hub_env
    assert job.run(_argv(model_dir, "--chunk_size_mb", "0.02")) == 0
    lfs = {f["path"]: f["size"] for f in _manifest(model_dir)["files"] if f["lfs"]}
    assert server.count_requests("PUT", r"^/_lfs/upload/", 200) == len(lfs)  # None again at commit time.
    assert server.bytes_uploaded == sum(lfs.values())
    assert server.count_requests("POST", r"/objects/verify$", 200) == len(lfs)


def test_large_files_go_up_in_parallel_parts_when_the_hub_asks_for_multipart(hub_env, model_dir):
    server = hub_env
    (model_dir / "saved_model" / "variables" / "variables.data-00001-of-00002").write_bytes(bytes(range(256)) * 2048)
    server.multipart_chunk_size = 64 * 1024  # The 512 KiB shard goes up in 8 parts.
    server.bandwidth_bytes_per_s = 1024 * 1024  # ~60 ms a part: parts sent one by one would never overlap.
    assert job.run(_argv(model_dir)) == 0
    assert server.count_requests("PUT", r"/part/\d+$", 200) >= 8
    assert server.max_concurrent_uploads > 1
    assert all(server.read_file(MODEL_REPO, p, "v1") == data for p, data in _published_files(model_dir).items())
    server.reset_stats()
    assert job.run(_argv(model_dir, version="v2")) == 0  # Re-published: no part is sent again.
    assert server.bytes_uploaded == 0 and server.count_requests("PUT") == 0


# ------------------------------------------------------------------------------------------------ the gate and dry run


def test_blessing_gate_blocks_a_weak_model(hub_env, tmp_path, caplog):
    server = hub_env
    weak = make_model_dir(tmp_path / "weak", val_miou=0.3)
    assert job.run(_argv(weak, "--min_miou", "0.5")) == 3
    assert server.requests == []
    doc = _manifest(weak)
    assert doc["status"] == "not-blessed" and doc["model"]["commit_sha"] is None
    assert doc["blessing"] == {
        "metric": "val/mean_iou",
        "value": 0.3,
        "threshold": 0.5,
        "blessed": False,
        "reason": "val/mean_iou 0.3000 is below --min_miou 0.5",
        "baseline": None,
        "candidate_value": None,
        "baseline_value": None,
        "max_regression": None,
    }
    assert "0.3000 is below --min_miou 0.5" in doc["reason"] and "0.3000 is below" in caplog.text


def test_a_model_above_the_gate_is_pushed(hub_env, model_dir):
    assert job.run(_argv(model_dir, "--min_miou", "0.9")) == 0
    assert _manifest(model_dir)["blessing"]["blessed"] is True


@pytest.mark.parametrize("flag", ["--dry_run", "--publish_dry_run", "--dry_run=true"])
def test_dry_run_touches_no_network(hub_server, model_dir, app_dir, monkeypatch, flag, capsys):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")  # Nothing listens there.
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert job.run(_argv(model_dir, flag, app_dir=app_dir)) == 0
    assert hub_server.requests == []
    doc = _manifest(model_dir)
    assert doc["status"] == "dry-run" and doc["model"]["commit_sha"] is None
    planned = {f["path"]: f for f in doc["files"]}
    assert set(planned) == set(_published_files(model_dir)) | {"README.md"}
    assert all(f["action"] == "planned" and f["size"] > 0 for f in planned.values())
    assert planned["saved_model/saved_model.pb"]["lfs_predicted"] and not planned["metrics.json"]["lfs_predicted"]
    preview = model_dir / "publish_preview"
    assert (preview / "README.md").read_text().startswith("---\n")
    assert (preview / "space" / "examples" / "cat.png").read_bytes() == BINARY_EXAMPLE
    assert 'MODEL_VERSION = "v1"' in (preview / "space" / "app.py").read_text()
    assert "would upload" in capsys.readouterr().out


def test_preview_and_manifest_are_not_published(hub_env, model_dir):
    assert job.run(_argv(model_dir, "--dry_run")) == 0
    assert job.run(_argv(model_dir)) == 0
    tree = hub_env.list_files(MODEL_REPO)
    assert not any(p.startswith(("publish_preview", "checkpoints")) or p == manifest.MANIFEST_NAME for p in tree)


# ------------------------------------------------------------------------------------------------ faults and resume


def test_rate_limited_lfs_uploads_are_retried_honouring_retry_after(hub_env, model_dir):
    server = hub_env
    fault = server.inject(method="PUT", path_regex=r"^/_lfs/upload/", status=429, retry_after=1, times=2)
    assert job.run(_argv(model_dir)) == 0
    assert fault.hits == 2 and server.count_requests("PUT", r"^/_lfs/upload/", 429) == 2
    assert _model_commits(server) == 1
    tree = server.list_files(MODEL_REPO, "v1")
    assert all(server.read_file(MODEL_REPO, p, "v1") == data for p, data in _published_files(model_dir).items())
    assert set(tree) - {".gitattributes", "README.md"} == set(_published_files(model_dir))


def test_server_errors_on_commit_end_in_one_commit(hub_env, model_dir):
    server = hub_env
    server.inject(method="POST", path_regex=COMMIT_PATH, status=500, times=2)
    assert job.run(_argv(model_dir)) == 0
    assert server.count_requests("POST", COMMIT_PATH, 500) == 2 and _model_commits(server) == 1
    assert server.commits_created == 1


def test_a_commit_whose_response_is_lost_is_not_sent_again(hub_env, model_dir, caplog):
    server = hub_env
    server.inject(method="POST", path_regex=COMMIT_PATH, truncate_response_at=0)
    assert job.run(_argv(model_dir)) == 0
    assert server.commits_created == 1 and server.count_requests("POST", COMMIT_PATH) == 1
    assert "but it landed" in caplog.text
    assert _manifest(model_dir)["model"]["commit_sha"] == server.revision_sha(MODEL_REPO, "v1")


def test_a_killed_run_is_resumed_without_reuploading_or_duplicating(hub_env, model_dir, caplog):
    server = hub_env
    server.inject(method="POST", path_regex=COMMIT_PATH, drop=True, times=100)  # Every commit attempt dies.
    assert job.run(_argv(model_dir)) == 1
    assert _manifest(model_dir)["status"] == "failed" and server.commits_created == 0
    uploaded_first = server.bytes_uploaded
    assert uploaded_first > 0
    server.clear_faults()
    server.reset_stats()
    assert job.run(_argv(model_dir)) == 0
    assert server.bytes_uploaded == 0  # Every LFS object from the killed run was reused.
    assert server.commits_created == 1
    doc = _manifest(model_dir)
    assert doc["status"] == "pushed" and doc["model"]["commit_sha"] == server.revision_sha(MODEL_REPO, "v1")


def test_a_run_killed_after_its_commit_reuses_it(hub_env, model_dir):
    server = hub_env
    server.inject(method="POST", path_regex=r"^/api/models/.*/tag/", drop=True, times=100)
    assert job.run(_argv(model_dir)) == 1
    head = server.revision_sha(MODEL_REPO, "main")
    server.clear_faults()
    server.reset_stats()
    assert job.run(_argv(model_dir)) == 0
    assert server.commits_created == 0 and server.bytes_uploaded == 0
    doc = _manifest(model_dir)
    assert doc["model"]["commit_sha"] == head == server.revision_sha(MODEL_REPO, "refs/tags/v1")
    assert doc["model"]["reused_commit"] is True


# ------------------------------------------------------------------------------------------------ errors


def _error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("beam_seg")]


@pytest.mark.parametrize(
    ("status", "token"),
    [(401, "hf_not_a_valid_token_0123456789"), (403, "hf_other_users_token_0123456789")],
)
def test_auth_errors_are_one_line_naming_the_repo_without_the_token(
    hub_env, model_dir, app_dir, monkeypatch, caplog, capsys, status, token
):
    import apache_beam as beam

    hub_env.add_user("someone-else", "hf_other_users_token_0123456789")
    monkeypatch.setenv("HF_TOKEN", token)
    launched: list[object] = []  # A spy: the real run() still runs if it is called.
    run_job = beam.Pipeline.run
    monkeypatch.setattr(beam.Pipeline, "run", lambda self, *a, **k: launched.append(self) or run_job(self, *a, **k))
    assert job.run(_argv(model_dir, app_dir=app_dir)) == 1
    assert not launched  # The driver creates the repos: a bad token stops the run before any job starts.
    (line,) = _error_lines(caplog)
    assert f"HTTP {status}" in line and MODEL_REPO in line and "\n" not in line
    out = capsys.readouterr()
    assert token not in caplog.text + out.out + out.err
    doc = _manifest(model_dir)
    assert doc["status"] == "failed" and doc["reason"] == line and token not in json.dumps(doc)
    assert hub_env.commits_created == 0


def test_a_missing_repo_is_a_404_line(hub_env, app_dir, tmp_path, caplog):
    argv = [
        "--rollback",
        "v1",
        "--model_repo",
        f"{DEFAULT_USER}/no-such-model",
        "--space_repo",
        SPACE_REPO,
        "--app_dir",
        str(app_dir),
        "--output_dir",
        str(tmp_path),
    ]
    assert job.run(argv) == 1
    (line,) = _error_lines(caplog)
    assert "HTTP 404" in line and f"{DEFAULT_USER}/no-such-model" in line


def test_an_unreachable_hub_is_one_line(hub_env, model_dir, monkeypatch, caplog):
    endpoint = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    assert job.run(_argv(model_dir)) == 1
    (line,) = _error_lines(caplog)
    assert f"cannot reach the Hub at {endpoint}" in line and MODEL_REPO in line
    assert DEFAULT_TOKEN not in caplog.text


def test_no_token_is_a_clear_error(hub_client_env, model_dir, monkeypatch, caplog, tmp_path):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    assert job.run(_argv(model_dir)) == 2
    (line,) = _error_lines(caplog)
    assert "no Hugging Face token" in line and "HF_TOKEN" in line and MODEL_REPO in line
    assert hub_client_env.requests == []
    assert _manifest(model_dir)["status"] == "failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model_repo", "no-namespace"], "must name its owner"),
        (["--model_repo", "bad//name"], "not a valid repo id"),
        (["--version", "main"], "cannot name a tag and a branch"),
        (["--min_miou", "1.5"], "--min_miou 1.5"),
        (["--placeholder", "lower=1"], "UPPER_SNAKE_CASE"),
        (["--placeholder", "MODEL_VERSION=x"], "cannot be overridden"),
        (["--chunk_size_mb", "0"], "--chunk_size_mb 0.0 must be > 0"),
        (["--space_repo", f"{DEFAULT_USER}/s", "--app_dir", "/nonexistent"], "is not a directory"),
        (["--rollback", "v1", "--version", "v2"], "do not also give --version"),
        (["--hf_token_secret", "hf-token"], "--hf_token_secret 'hf-token' is not a Secret Manager secret"),
    ],
)
def test_bad_arguments_give_a_clear_error(model_dir, caplog, capsys, args, message):
    argv = ["--model_dir", str(model_dir), "--model_repo", MODEL_REPO, *IN_MEMORY, *args]
    if "--rollback" in args:
        argv += ["--space_repo", SPACE_REPO]
    assert job.run(argv) == 2
    assert message in caplog.text + capsys.readouterr().err


def test_a_directory_without_a_saved_model_is_refused(model_dir, caplog):
    shutil.rmtree(model_dir / "saved_model")
    assert job.run(["--model_dir", str(model_dir), "--model_repo", MODEL_REPO]) == 2
    assert "saved_model.pb does not exist" in caplog.text


@pytest.mark.parametrize("missing", ["model_config.json", "metrics.json"])
def test_an_incomplete_training_output_is_refused_before_any_hub_call(hub_env, model_dir, missing):
    """A training killed before its export finished (model_config.json is written last): the real command refuses
    with one line and exit code 2, and nothing reaches the Hub."""
    (model_dir / missing).unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "beam_seg.publish", *_argv(model_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": REPO_ROOT},
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()  # The stage's error line, in its console format ("HH:MM:SS ERROR: ...").
    written = "is written last" if missing == "model_config.json" else "is written before model_config.json"
    assert line.endswith(
        f" ERROR: {model_dir}/{missing} does not exist: {model_dir} is not a complete training "
        f"output ({missing} {written}); make it with python -m beam_seg.train --data_dir DIR --output_dir {model_dir}"
    ), line
    assert hub_env.requests == []  # Not even the repo creation.
    assert not (model_dir / manifest.MANIFEST_NAME).exists()


# ------------------------------------------------------------------------------------------------ rollback


def test_rollback_repoints_the_space_without_touching_the_model(hub_env, model_dir, app_dir, tmp_path, caplog):
    server = hub_env
    assert job.run(_argv(model_dir, app_dir=app_dir, version="v1")) == 0
    v1 = server.revision_sha(MODEL_REPO, "v1")
    (model_dir / "history.json").write_text('[{"epoch": 1, "loss": 0.5}]')
    assert job.run(_argv(model_dir, app_dir=app_dir, version="v2")) == 0
    v2 = server.revision_sha(MODEL_REPO, "v2")
    assert v1 != v2 and f'"{v2}"' in server.read_file(SPACE_REPO, "app.py", repo_type="space").decode()

    server.reset_stats()
    out = tmp_path / "rollback"
    argv = [
        "--rollback",
        "v1",
        "--model_repo",
        MODEL_REPO,
        "--space_repo",
        SPACE_REPO,
        "--app_dir",
        str(app_dir),
        "--placeholder",
        "TITLE=Pet segmentation",
        "--output_dir",
        str(out),
    ]
    assert job.run(argv) == 0
    app_py = server.read_file(SPACE_REPO, "app.py", repo_type="space").decode()
    assert f'MODEL_REVISION = "{v1}"' in app_py and 'MODEL_VERSION = "v1"' in app_py
    assert server.bytes_uploaded == 0 and server.count_requests("POST", COMMIT_PATH) == 0  # Model untouched.
    assert server.revision_sha(MODEL_REPO, "main") == v2
    doc = json.loads((out / manifest.MANIFEST_NAME).read_text())
    assert doc["status"] == "rolled-back" and doc["model"]["commit_sha"] == v1 and doc["space"]["model_revision"] == v1

    assert job.run([*argv[:1], "v9", *argv[2:]]) == 1
    (line,) = _error_lines(caplog)
    assert "'v9'" in line and MODEL_REPO in line and "v1" in line


# ------------------------------------------------------------------------------------------------ CLI


def test_help_lists_every_flag(capsys):
    assert job.run(["--help"]) == 0
    text = capsys.readouterr().out
    import argparse

    parser = argparse.ArgumentParser()
    pipeline.PublishOptions._add_argparse_args(parser)
    flags = [a.option_strings[0] for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(flags) >= 13
    for flag in [*flags, "--output_dir", "--dry_run", "--runner", "--direct_running_mode", "HF_TOKEN", "HF_ENDPOINT"]:
        assert flag in text, flag


def test_dry_run_alias_does_not_clash_with_beams_own_flag():
    assert options.normalize_argv(["--dry_run", "--x"]) == ["--publish_dry_run", "--x"]
    assert options.normalize_argv(["--dry_run", "false"]) == []
    assert options.normalize_argv(["--dry_run=1"]) == ["--publish_dry_run"]
    with pytest.raises(cli.UsageError, match="--dry_run 'maybe'"):
        options.normalize_argv(["--dry_run=maybe"])


def test_build_pipeline_needs_no_network(model_dir, app_dir, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    p, built = job.build_pipeline(_argv(model_dir, app_dir=app_dir))
    labels = {t.full_label.split("/")[-1] for t in p.transforms_stack[0].parts[0].parts}
    assert {"GroupIntoChunks", "UploadChunks", "CommitVersion", "PushSpace", "WriteManifest"} <= labels
    assert built.version == "v1" and built.blessing.blessed and "README.md" in {f.path_in_repo for f in built.files}
    assert not any(f.path_in_repo.startswith("checkpoints/") for f in built.files)


def test_default_version_is_a_utc_timestamp():
    assert plan.default_version(0) == "v19700101T000000Z"


def test_chunks_respect_the_target_size():
    files = [plan.SourceFile(f"f{i}", "", size, False) for i, size in enumerate([50, 30, 30, 20, 10, 200])]
    chunks = plan.plan_chunks(files, 60)
    assert sorted(f.path_in_repo for c in chunks for f in c) == sorted(f.path_in_repo for f in files)
    assert [sum(f.size for f in c) for c in chunks] == [200, 60, 60, 20]
    assert plan.plan_chunks(files, 60) == chunks  # Deterministic.


# ------------------------------------------------------------------------------------------------ gs:// and Dataflow


@pytest.fixture
def gcs_model(gcs_emulator, model_template: Path) -> tuple[str, object, str]:
    """The stand-in model directory copied to a bucket of the GCS emulator: (gs:// URI, bucket, prefix)."""
    import uuid

    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    client.project = "test-project"
    bucket = client.lookup_bucket("beam-seg-publish") or client.create_bucket("beam-seg-publish")
    prefix = f"models/{uuid.uuid4().hex[:8]}"
    for path in model_template.rglob("*"):
        if path.is_file():
            bucket.blob(f"{prefix}/{path.relative_to(model_template).as_posix()}").upload_from_filename(str(path))
    return f"gs://beam-seg-publish/{prefix}", bucket, prefix


def test_a_model_in_gcs_is_published(hub_env, gcs_model, model_template):
    uri, bucket, prefix = gcs_model
    argv = [
        "--model_dir",
        uri,
        "--model_repo",
        MODEL_REPO,
        "--version",
        "v1",
        "--output_dir",
        f"gs://beam-seg-publish/{prefix}-out",
        *IN_MEMORY,
    ]
    assert job.run(argv) == 0
    doc = json.loads(bucket.blob(f"{prefix}-out/{manifest.MANIFEST_NAME}").download_as_bytes())
    assert doc["status"] == "pushed" and doc["model_dir"] == uri
    expected = _published_files(model_template)
    assert {p: hub_env.read_file(MODEL_REPO, p, "v1") for p in expected} == expected


def test_dataflow_job_is_built_offline(gcs_model):
    from apache_beam.options.pipeline_options import TestOptions

    uri, _, prefix = gcs_model
    argv = [
        "--model_dir",
        uri,
        "--model_repo",
        MODEL_REPO,
        "--version",
        "v1",
        "--output_dir",
        f"gs://beam-seg-publish/{prefix}-df",
        "--runner",
        "DataflowRunner",
        "--project",
        "test-project",
        "--region",
        "europe-west4",
        "--temp_location",
        "gs://beam-seg-publish/tmp",
        "--staging_location",
        "gs://beam-seg-publish/staging",
        "--no_auth",
    ]
    p, built = job.build_pipeline(argv)
    p.options.view_as(TestOptions).dry_run = True  # Beam's own dry run: build the job, do not submit it.
    dataflow_job = p.run().job
    assert dataflow_job.proto.type.name == "JOB_TYPE_BATCH" and built.runner == "DataflowRunner"


def test_dataflow_needs_gcs_paths(model_dir, capsys):
    argv = ["--model_dir", str(model_dir), "--model_repo", MODEL_REPO, "--runner", "DataflowRunner"]
    assert job.run(argv) == 2
    assert "must be gs:// with --runner DataflowRunner" in capsys.readouterr().err


def test_upload_pools_are_shared_by_a_process():
    """One set of pools per worker process and settings: DoFn instances (harness threads) and later jobs reuse it."""
    first = uploads._upload_pools(3, 2, xet=False)
    assert uploads._upload_pools(3, 2, xet=False) is first
    assert first.chunks._max_workers == 3 and first.transfers is not None and first.transfers._max_workers == 6
    other = uploads._upload_pools(2, 1, xet=True)  # Other settings: new pools (no transfer pool with Xet).
    assert other is not first and other.transfers is None and other.chunks._max_workers == 2
