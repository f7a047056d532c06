"""The demo Space on today's Hub: SDK and hardware settled before any upload (``--space_sdk``, ``--space_hardware``).

Against the Hub test double in its free-account mode (``plan="free"``: 402 for Gradio/Docker Spaces off ZeroGPU, as
the Hub answers since July 2026; a ZeroGPU Space without a ``@spaces.GPU`` function reports ``RUNTIME_ERROR``) and
with a PRO-like account (the default user).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from hubserver import DEFAULT_USER, HubServer
from test_publish import MODEL_REPO, _argv, _manifest, app_dir, fast_retry, hub_env, model_dir, model_template  # noqa: F401

from beam_seg import cli
from beam_seg.publish import job

FREE_USER, FREE_TOKEN = "free-user", "hf_free_user_write_token"
FREE_MODEL, FREE_SPACE = f"{FREE_USER}/pets-unet", f"{FREE_USER}/pets-demo"
UPLOADS = r"^/api/models/.*/(commit|preupload)/|/info/lfs/|^/_lfs/"  # Any model upload or commit.


@pytest.fixture
def free_env(hub_env: HubServer, monkeypatch: pytest.MonkeyPatch) -> HubServer:  # noqa: F811
    """The Hub test double with a free account whose token is ``HF_TOKEN``."""
    hub_env.add_user(FREE_USER, FREE_TOKEN, plan="free")
    monkeypatch.setenv("HF_TOKEN", FREE_TOKEN)
    return hub_env


@pytest.fixture
def zero_gpu_app(app_dir: Path) -> Path:  # noqa: F811
    """The stand-in Gradio template with the ``@spaces.GPU`` function ZeroGPU needs at start-up."""
    app = app_dir / "app.py"
    app.write_text(app.read_text() + "\nimport spaces\n\n\n@spaces.GPU\ndef warm_up():\n    return None\n")
    return app_dir


@pytest.fixture
def static_app(tmp_path: Path) -> Path:
    root = tmp_path / "static-app"
    root.mkdir()
    (root / "README.md").write_text("---\ntitle: Pets\nsdk: static\napp_file: index.html\n---\n")
    (root / "index.html").write_text(
        '<script type="module">const model = "$HUB_URL/$MODEL_REPO_ID/resolve/$MODEL_REVISION/model.tflite";</script>'
    )
    return root


def _free_argv(model_dir: Path, app: Path, *extra: str) -> list[str]:  # noqa: F811
    argv = _argv(model_dir, "--space_repo", FREE_SPACE, "--app_dir", str(app), *extra)
    return [FREE_MODEL if a == MODEL_REPO else a for a in argv]


def _uploads(server: HubServer) -> int:
    return server.count_requests(None, UPLOADS, None)


def test_auto_lands_on_zerogpu_for_a_free_account_and_runs(free_env, model_dir, zero_gpu_app, caplog):  # noqa: F811
    assert job.run(_free_argv(model_dir, zero_gpu_app)) == 0
    runtime = free_env.space_runtime(FREE_SPACE)
    assert (runtime["stage"], runtime["hardware"]["current"]) == ("RUNNING", "zero-a10g")
    space = _manifest(model_dir)["space"]
    assert (space["sdk"], space["hardware"], space["created"]) == ("gradio", "zero-a10g", True)
    assert "cpu-basic needs a PRO subscription" in space["hardware_note"]
    notes = [r.getMessage() for r in caplog.records if "needs a PRO subscription" in r.getMessage()]
    expected = (
        f"cpu-basic needs a PRO subscription for Space {FREE_SPACE} (HTTP 402: Static Spaces are free for everyone, "
        "but hosting Gradio and Docker Spaces on free cpu-basic requires a PRO subscription); it runs on zero-a10g "
        "instead (ZeroGPU: predictions stay on the CPU)"
    )
    assert notes == [expected]
    assert free_env.revision_sha(FREE_MODEL, "v1")
    # Published again: the existing Space keeps its hardware, no new 402.
    caplog.clear()
    assert job.run(_free_argv(model_dir, zero_gpu_app, "--version", "v2")) == 0
    assert _manifest(model_dir)["space"]["hardware"] == "zero-a10g"
    assert not [r for r in caplog.records if "PRO subscription" in r.getMessage()]


def test_a_zerogpu_app_without_a_gpu_function_does_not_start(free_env, model_dir, app_dir):  # noqa: F811
    """Why the app needs its ``@spaces.GPU`` function: the Hub's ZeroGPU refuses to start it otherwise."""
    assert job.run(_free_argv(model_dir, app_dir)) == 0
    assert free_env.space_runtime(FREE_SPACE)["stage"] == "RUNTIME_ERROR"


def test_cpu_basic_on_a_free_account_fails_before_any_upload(free_env, model_dir, zero_gpu_app, caplog):  # noqa: F811
    caplog.set_level("ERROR")
    assert job.run(_free_argv(model_dir, zero_gpu_app, "--space_hardware", "cpu-basic")) == 1
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line == (
        f"cannot host Gradio Space {FREE_SPACE}: the Hub answered HTTP 402 for cpu-basic (cpu-basic: Static Spaces "
        "are free for everyone, but hosting Gradio and Docker Spaces on free cpu-basic requires a PRO subscription); "
        "with a free account use --space_sdk static (free for everyone, runs the model in the browser) or "
        "--space_hardware zero-a10g (free accounts may host up to 2 ZeroGPU Spaces); cpu-basic and other hardware "
        "for a Gradio Space need a PRO subscription or a payment method"
    )
    assert _uploads(free_env) == 0
    assert _manifest(model_dir)["status"] == "failed"


def test_no_hardware_left_lists_the_options(free_env, model_dir, zero_gpu_app, caplog):  # noqa: F811
    """Both ZeroGPU slots of the free account taken: auto tries cpu-basic, then ZeroGPU, and says what is left."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=free_env.url, token=FREE_TOKEN)
    for name in ("other-1", "other-2"):
        api.create_repo(f"{FREE_USER}/{name}", repo_type="space", space_sdk="gradio", space_hardware="zero-a10g")
    caplog.set_level("ERROR")
    assert job.run(_free_argv(model_dir, zero_gpu_app)) == 1
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line.startswith(f"cannot host Gradio Space {FREE_SPACE}: the Hub answered HTTP 402 for cpu-basic and ")
    assert "zero-a10g: Free accounts can host up to 2 ZeroGPU Spaces" in line
    assert "--space_sdk static" in line
    assert _uploads(free_env) == 0


def test_a_static_space_is_free_for_everyone(free_env, model_dir, static_app):  # noqa: F811
    assert job.run(_free_argv(model_dir, static_app, "--space_sdk", "static")) == 0
    sha = free_env.revision_sha(FREE_MODEL, "v1")
    page = free_env.read_file(FREE_SPACE, "index.html", repo_type="space").decode()
    assert f"{free_env.url}/{FREE_MODEL}/resolve/{sha}/model.tflite" in page
    assert free_env.space_runtime(FREE_SPACE)["stage"] == "RUNNING"
    space = _manifest(model_dir)["space"]
    assert (space["sdk"], space["hardware"], space["hardware_note"]) == ("static", None, None)
    # Rollback works for a static Space too.
    assert job.run(_free_argv(model_dir, static_app, "--space_sdk", "static", "--version", "v2")) == 0
    argv = ["--model_repo", FREE_MODEL, "--space_repo", FREE_SPACE, "--space_sdk", "static", "--app_dir"]
    assert job.run([*argv, str(static_app), "--rollback", "v1", "--output_dir", str(model_dir)]) == 0
    page = free_env.read_file(FREE_SPACE, "index.html", repo_type="space").decode()
    assert f"/resolve/{sha}/model.tflite" in page


def test_a_pro_account_keeps_cpu_basic(hub_env, model_dir, app_dir):  # noqa: F811
    assert job.run(_argv(model_dir, app_dir=app_dir)) == 0
    space = _manifest(model_dir)["space"]
    assert (space["sdk"], space["hardware"], space["hardware_note"]) == ("gradio", "cpu-basic", None)
    runtime = hub_env.space_runtime(f"{DEFAULT_USER}/pets-demo")
    assert (runtime["stage"], runtime["hardware"]["current"]) == ("RUNNING", "cpu-basic")


def test_an_explicit_hardware_moves_an_existing_space(hub_env, model_dir, app_dir):  # noqa: F811
    assert job.run(_argv(model_dir, app_dir=app_dir)) == 0
    assert job.run(_argv(model_dir, "--space_hardware", "t4-small", app_dir=app_dir, version="v2")) == 0
    assert hub_env.space_runtime(f"{DEFAULT_USER}/pets-demo")["hardware"]["requested"] == "t4-small"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space_sdk", "static", "--space_hardware", "zero-a10g"], "--space_hardware zero-a10g applies to Gradio"),
        (["--space_hardware", "CPU Basic"], "--space_hardware 'CPU Basic' must be auto or a Hub hardware flavour"),
        (["--space_sdk", "streamlit"], "argument --space_sdk: invalid choice: 'streamlit'"),
    ],
)
def test_bad_space_flags_are_one_line(model_dir, capsys, args, message):  # noqa: F811
    assert job.run(["--model_dir", str(model_dir), "--model_repo", MODEL_REPO, *args]) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_the_default_template_follows_the_sdk(model_dir, tmp_path, monkeypatch):  # noqa: F811
    """Without --app_dir the template is the SDK's own folder of the repository (a dry run renders it)."""
    monkeypatch.chdir(REPO_ROOT)
    out = tmp_path / "out"
    for sdk, app_file in (("gradio", "app.py"), ("static", "index.html")):
        if not (Path(REPO_ROOT) / "apps" / sdk / "semantic_segmentation" / app_file).exists():
            pytest.fail(f"apps/{sdk}/semantic_segmentation/{app_file} is missing")
        argv = ["--model_dir", str(model_dir), "--model_repo", MODEL_REPO, "--space_repo", f"{DEFAULT_USER}/d"]
        assert job.run([*argv, "--space_sdk", sdk, "--dry_run", "--output_dir", str(out)]) == 0
        doc = json.loads((out / "publish_manifest.json").read_text())
        assert doc["space"]["sdk"] == sdk
        assert app_file in {f["path"] for f in doc["space"]["files"]}
        shutil.rmtree(out)


def test_the_real_gradio_template_starts_on_zerogpu(free_env, model_dir):  # noqa: F811
    """The project's own Gradio app declares the ``@spaces.GPU`` function ZeroGPU needs: its Space reaches RUNNING."""
    app = Path(REPO_ROOT) / "apps" / "gradio" / "semantic_segmentation"
    assert job.run(_free_argv(model_dir, app)) == 0
    runtime = free_env.space_runtime(FREE_SPACE)
    assert (runtime["stage"], runtime["hardware"]["current"]) == ("RUNNING", "zero-a10g")
