"""End-to-end test of the rendered Gradio Space on LiteRT: real server processes, a real browser, a real client.

A tiny U-Net is trained by the real pipeline (shared with test_app.py; its output has ``model.tflite``). Three
instances of the app run as ``python app.py`` on free ports:

- ``model``: the Space rendered by a real ``python -m beam_seg.publish --dry_run``, with ``BEAM_SEG_MODEL_DIR``
  pointing at the model;
- ``hub``: the Space rendered for the model published (with the real ``huggingface_hub`` client) to the project's
  Hub test double, at its commit, with an empty cache: the app fetches ``model.tflite`` and ``model_config.json``
  from the Hub on its first request;
- ``broken``: rendered before the model exists, with a model directory that does not exist, to show that the app
  starts anyway and explains the problem on the first prediction.

Readiness is polled with a deadline. Chromium comes from Debian (``apt-get install -y chromium``); Playwright
drives it with the sync API. A missing ``/usr/bin/chromium`` fails the test: it is part of the test environment,
not optional. Screenshots go to ``$BEAM_SEG_TEST_ARTIFACTS/app_browser/`` (default: under pytest's base
temporary directory).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubserver import DEFAULT_TOKEN, DEFAULT_USER, HubServer
from PIL import Image
from test_app import CLASSES, MODEL_FILES, MODEL_REPO, TEMPLATE, free_port, train_tiny_model

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_DEADLINE_S = 180.0
PREDICTION_TIMEOUT_MS = 120_000
VERSION = "v20261123T010203Z"
REVISION = "0123456789abcdef0123456789abcdef01234567"


class AppServer:
    """``python app.py`` in ``app_dir`` as a subprocess on a free port; output goes to ``log``."""

    def __init__(self, app_dir: Path, log: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = env
        full_env = {
            **os.environ,
            **env,
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        full_env.pop("HF_TOKEN", None)
        self._log_file = open(log, "wb")  # Closed in stop().
        self.process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=app_dir, env=full_env, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def wait_ready(self, deadline: float) -> None:
        """Polls ``GET /`` until it answers 200; fails with the server log if the process dies or time runs out."""
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"app.py exited with {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app.py did not answer on {self.url} in time:\n{self.tail()}")
            time.sleep(0.2)

    def tail(self, chars: int = 4000) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log_file.close()


def render_space(dest: Path, *, revision: str = REVISION, endpoint: str = "https://huggingface.co") -> Path:
    """Renders the template for ``MODEL_REPO`` at ``VERSION``/``revision`` with ``beam_seg.space``."""
    from beam_seg.publish import space

    values = space.placeholder_values(model_repo=MODEL_REPO, version=VERSION, revision=revision, endpoint=endpoint)
    files = space.render_template(space.load_template(str(TEMPLATE)), values)
    assert space.leftover_placeholders(files) == {}
    for path, data in files.items():
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        (dest / path).write_bytes(data)
    return dest


def publish_dry_run(model_dir: str, output_dir: Path) -> Path:
    """Runs the real publish stage's dry run and returns the Space folder it rendered."""
    import ast

    from beam_seg.publish import job as publish

    argv = [
        "--model_dir",
        model_dir,
        "--model_repo",
        MODEL_REPO,
        "--space_repo",
        "tester/pets-demo",
        "--app_dir",
        str(TEMPLATE),
        "--version",
        VERSION,
        "--output_dir",
        str(output_dir),
        "--dry_run",
    ]
    assert publish.run(argv) == 0
    rendered = output_dir / "publish_preview" / "space"
    for path in rendered.rglob("*"):
        if path.suffix in (".py", ".md", ".txt"):
            assert "$MODEL_" not in path.read_text(), path
    ast.parse((rendered / "app.py").read_text())
    assert MODEL_REPO in (rendered / "app.py").read_text()
    return rendered


def publish_to_hub(hub: HubServer, model_dir: str) -> str:
    """Uploads the model directory (minus checkpoints) with the real client and tags ``VERSION``; returns the commit."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=DEFAULT_TOKEN)
    api.create_repo(MODEL_REPO, exist_ok=True)
    commit = api.upload_folder(repo_id=MODEL_REPO, folder_path=model_dir, ignore_patterns=["checkpoints/*"])
    api.create_tag(MODEL_REPO, tag=VERSION, revision=commit.oid)
    return commit.oid


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    """The project's Hub test double for this module's apps (the ``hub_server`` fixture is per test)."""
    with HubServer(storage_dir=tmp_path_factory.mktemp("hub-storage")) as server:
        server.add_user(DEFAULT_USER, DEFAULT_TOKEN)
        yield server


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, hub: HubServer) -> Iterator[dict[str, AppServer]]:
    """Three rendered apps: ``model`` (BEAM_SEG_MODEL_DIR), ``hub`` (the Hub at a commit) and ``broken`` (no model)."""
    root = tmp_path_factory.mktemp("space")
    app_dir = render_space(root / "rendered")
    # The broken one starts while the model trains: it needs no model to start.
    broken = AppServer(app_dir, root / "broken.log", {"BEAM_SEG_MODEL_DIR": str(root / "no-model-here")})
    started: dict[str, AppServer] = {"broken": broken}
    try:
        model_dir = train_tiny_model(tmp_path_factory)
        published = publish_dry_run(model_dir, root / "publish")
        started["model"] = AppServer(published, root / "model.log", {"BEAM_SEG_MODEL_DIR": model_dir})
        commit = publish_to_hub(hub, model_dir)
        hub_app = render_space(root / "rendered-hub", revision=commit, endpoint=hub.url)
        hub_env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_CACHE": str(root / "hub-app-cache")}
        started["hub"] = AppServer(hub_app, root / "hub.log", hub_env)
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        for server in started.values():
            server.wait_ready(deadline)
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: ``$BEAM_SEG_TEST_ARTIFACTS/app_browser`` or under pytest's base temp dir."""
    root = os.environ.get("BEAM_SEG_TEST_ARTIFACTS")
    path = (Path(root) if root else tmp_path_factory.getbasetemp() / "artifacts") / "app_browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium with "
            "`apt-get update && apt-get install -y chromium` (run_tests.sh does this)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _example(suffix: str) -> Path:
    return sorted((TEMPLATE / "examples").glob(f"*{suffix}"))[0]


def _wait_for_toast(page: object, text: str) -> None:
    """Waits until an error toast holding ``text`` is visible."""
    page.locator(".toast-body.error", has_text=text).first.wait_for(state="visible", timeout=PREDICTION_TIMEOUT_MS)


@pytest.mark.parametrize("mode", ["model", "hub"])
def test_browser_upload_segment_and_read_percentages(
    servers: dict[str, AppServer], browser: object, artifacts: Path, tmp_path: Path, mode: str
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    try:
        page.goto(servers[mode].url + "/")
        page.wait_for_selector("#submit")
        header = page.inner_text("body")
        # BEAM_SEG_MODEL_DIR wins over the rendered repo; the Hub mode names the rendered repo.
        assert (MODEL_REPO in header) == (mode == "hub") and "LiteRT" in header
        page.locator("#input-image input[type=file]").set_input_files(str(_example(".jpg")))
        page.wait_for_selector("#input-image img")
        page.click("#submit")
        page.wait_for_selector("#overlay img", timeout=PREDICTION_TIMEOUT_MS)
        page.wait_for_function(
            "() => { const img = document.querySelector('#overlay img'); return img && img.naturalWidth > 0; }",
            timeout=PREDICTION_TIMEOUT_MS,
        )
        page.wait_for_selector("#summary .class-row", timeout=PREDICTION_TIMEOUT_MS)

        width = page.evaluate("() => document.querySelector('#overlay img').naturalWidth")
        assert width == Image.open(_example(".jpg")).size[0]  # The overlay keeps the photo's size.
        assert page.evaluate("() => document.querySelector('#mask img').naturalWidth") == width
        rows = page.evaluate(
            """() => [...document.querySelectorAll('#summary .class-row')].map(row => ({
                name: row.dataset.class, percent: parseFloat(row.dataset.percent),
                shown: parseFloat(row.querySelector('.value').innerText),
                bar: getComputedStyle(row.querySelector('.bar')).backgroundColor,
                swatch: getComputedStyle(row.querySelector('.swatch')).backgroundColor}))"""
        )
        assert [row["name"] for row in rows] == list(CLASSES)
        assert abs(sum(row["percent"] for row in rows) - 100.0) < 1e-3, rows
        assert abs(sum(row["shown"] for row in rows) - 100.0) <= len(rows) * 0.05 + 1e-9, rows  # Shown to 0.1%.
        # Bars and legend swatches are drawn in the model's palette colours, class by class.
        config = json.loads((Path(servers["model"].env["BEAM_SEG_MODEL_DIR"]) / "model_config.json").read_text())
        for row in rows:
            r, g, b = config["palette"][row["name"]]
            assert row["bar"] == row["swatch"] == f"rgb({r}, {g}, {b})", row
        assert not page.locator("#percentages").is_visible()  # /predict's Label: for API clients, shown as the bars.
        assert page.locator(".toast-body.error").count() == 0  # No error toast (the "Loading the model" info is fine).
        page.screenshot(path=str(artifacts / f"app-{mode}.png"), full_page=True, animations="disabled")
        assert (artifacts / f"app-{mode}.png").stat().st_size > 10_000

        # Non-images: the frontend refuses a .txt by its type; a text file named .png reaches the server, whose
        # answer is a readable message, not a traceback.
        for name, expected in (
            ("notes.txt", "Invalid file type: notes.txt"),
            ("fake.png", "The file 'fake.png' is not an image this app can read"),
        ):
            bogus = tmp_path / name
            bogus.write_text("not a picture")
            page.reload()
            page.wait_for_selector("#submit")
            page.locator("#input-image input[type=file]").set_input_files(str(bogus))
            page.click("#submit")
            _wait_for_toast(page, expected)
        page.screenshot(path=str(artifacts / f"not-an-image-{mode}.png"), animations="disabled")
    finally:
        page.close()


def test_gradio_client_named_endpoint(servers: dict[str, AppServer], tmp_path: Path) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(servers["model"].url, verbose=False, download_files=str(tmp_path))
    api = client.view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/predict"]  # The summary bars are no public endpoint.
    example = _example(".png")
    overlay_path, mask_path, label = client.predict(handle_file(str(example)), api_name="/predict")
    size = Image.open(example).size
    for path in (overlay_path, mask_path):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == size
    confidences = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert set(confidences) == set(CLASSES) and sum(confidences.values()) == pytest.approx(1.0, abs=1e-6)

    # A photo whose EXIF tag says "rotate 90°": the app gets the file as uploaded and shows the result upright.
    rotated = tmp_path / "rotated.jpg"
    photo = Image.open(_example(".jpg"))
    exif = photo.getexif()
    exif[0x0112] = 6
    photo.save(rotated, exif=exif)
    overlay_path, _, _ = client.predict(handle_file(str(rotated)), api_name="/predict")
    assert Image.open(overlay_path).size == (photo.height, photo.width)

    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    with pytest.raises(AppError, match="The file 'notes.txt' is not an image this app can read"):
        client.predict(handle_file(str(text)), api_name="/predict")


def test_hub_mode_fetches_only_the_litert_files_at_the_commit(
    servers: dict[str, AppServer], hub: HubServer, tmp_path: Path
) -> None:
    from gradio_client import Client, handle_file

    client = Client(servers["hub"].url, verbose=False, download_files=str(tmp_path))
    _, _, label = client.predict(handle_file(str(_example(".png"))), api_name="/predict")
    assert sum(c["confidence"] for c in label["confidences"]) == pytest.approx(1.0, abs=1e-6)
    commit = hub.revision_sha(MODEL_REPO, VERSION)
    fetched = {
        name for name in MODEL_FILES if hub.count_requests("GET", rf"^/{MODEL_REPO}/resolve/{commit}/{name}$") > 0
    }
    assert fetched == MODEL_FILES
    # Nothing else of the repo (SavedModel, pictures, metrics), and no file by a moving ref.
    assert hub.count_requests(None, rf"^/{MODEL_REPO}/resolve/(?!{commit}/(model\.tflite|model_config\.json)$)") == 0
    cache = Path(servers["hub"].env["HF_HUB_CACHE"])
    assert {p.name for p in cache.rglob("snapshots/*/*")} == MODEL_FILES


def test_app_starts_without_a_model_and_explains_on_first_prediction(
    servers: dict[str, AppServer], browser: object, artifacts: Path
) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    expected = r"The model directory '.*no-model-here' does not exist: point BEAM_SEG_MODEL_DIR at the output directory"
    client = Client(servers["broken"].url, verbose=False)
    with pytest.raises(AppError, match=expected):
        client.predict(handle_file(str(_example(".jpg"))), api_name="/predict")
    assert servers["broken"].process.poll() is None  # Still serving.

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto(servers["broken"].url + "/")
        page.wait_for_selector("#submit")
        page.locator("#input-image input[type=file]").set_input_files(str(_example(".jpg")))
        page.wait_for_selector("#input-image img")
        page.click("#submit")
        _wait_for_toast(page, "does not exist: point BEAM_SEG_MODEL_DIR at the output directory")
        page.screenshot(path=str(artifacts / "no-model.png"), animations="disabled")
    finally:
        page.close()
