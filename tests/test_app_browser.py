"""End-to-end test of the rendered Gradio Space: a real server process, a real browser, a real client.

A tiny U-Net is trained by the real pipeline (shared with test_app.py); a real ``python -m beam_seg.publish
--dry_run`` of it renders the Space, which is started as ``python app.py`` on a free port with
``BEAM_SEG_MODEL_DIR`` pointing at the model. A second instance, rendered with ``beam_seg.space`` before the
model exists, runs without any model to show that the app starts anyway and explains the problem on the
first prediction. Readiness is polled with a deadline.

Chromium comes from Debian (``apt-get install -y chromium``); Playwright drives it with the sync API. A
missing ``/usr/bin/chromium`` fails the test: it is part of the test environment, not optional.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from test_app import CLASSES, MODEL_REPO, TEMPLATE, free_port, train_tiny_model

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
        full_env = {
            **os.environ,
            **env,
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
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


def render_space(dest: Path) -> Path:
    """Renders the template for ``MODEL_REPO`` at ``VERSION``/``REVISION`` with ``beam_seg.space``."""
    from beam_seg.publish import space

    values = space.placeholder_values(
        model_repo=MODEL_REPO, version=VERSION, revision=REVISION, endpoint="https://huggingface.co"
    )
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


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AppServer]]:
    """Two rendered apps: ``model`` (the tiny trained model) and ``broken`` (a model dir that does not exist)."""
    root = tmp_path_factory.mktemp("space")
    app_dir = render_space(root / "rendered")
    # The broken one starts while the model trains: it needs no model to start.
    broken = AppServer(app_dir, root / "broken.log", {"BEAM_SEG_MODEL_DIR": str(root / "no-model-here")})
    started: dict[str, AppServer] = {"broken": broken}
    try:
        model_dir = train_tiny_model(tmp_path_factory)
        published = publish_dry_run(model_dir, root / "publish")
        started["model"] = AppServer(published, root / "model.log", {"BEAM_SEG_MODEL_DIR": model_dir})
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        for server in started.values():
            server.wait_ready(deadline)
        yield started
    finally:
        for server in started.values():
            server.stop()


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


def test_browser_upload_segment_and_read_percentages(
    servers: dict[str, AppServer], browser: object, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.goto(servers["model"].url + "/")
        page.wait_for_selector("#submit")
        assert MODEL_REPO not in page.inner_text("body")  # BEAM_SEG_MODEL_DIR wins over the rendered repo.
        page.locator("#input-image input[type=file]").set_input_files(str(_example(".jpg")))
        page.wait_for_selector("#input-image img")
        page.click("#submit")
        page.wait_for_selector("#overlay img", timeout=PREDICTION_TIMEOUT_MS)
        page.wait_for_function(
            "() => { const img = document.querySelector('#overlay img'); return img && img.naturalWidth > 0; }",
            timeout=PREDICTION_TIMEOUT_MS,
        )
        page.wait_for_selector("#percentages dd.confidence", timeout=PREDICTION_TIMEOUT_MS)
        page.wait_for_selector("#legend", timeout=PREDICTION_TIMEOUT_MS)

        width = page.evaluate("() => document.querySelector('#overlay img').naturalWidth")
        assert width == Image.open(_example(".jpg")).size[0]  # The overlay keeps the photo's size.
        assert page.evaluate("() => document.querySelector('#mask img').naturalWidth") == width
        names = page.locator("#percentages dt").all_inner_texts()
        values = [float(v.strip().rstrip("%")) for v in page.locator("#percentages dd.confidence").all_inner_texts()]
        assert sorted(names) == sorted(CLASSES)
        assert abs(sum(values) - 100.0) <= len(values) * 0.5 + 1e-9, values  # Each shown rounded to 1%.
        legend = page.inner_text("#legend")
        assert all(name in legend for name in CLASSES)
        assert page.locator(".toast-body.error").count() == 0  # No error toast (the "Loading the model" info is fine).
        page.screenshot(path=str(tmp_path / "app.png"), full_page=True, animations="disabled")
        assert (tmp_path / "app.png").stat().st_size > 10_000

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
        page.screenshot(path=str(tmp_path / "not-an-image.png"), animations="disabled")
    finally:
        page.close()


def test_gradio_client_named_endpoint(servers: dict[str, AppServer], tmp_path: Path) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(servers["model"].url, verbose=False, download_files=str(tmp_path))
    api = client.view_api(print_info=False, return_format="dict")
    assert "/predict" in api["named_endpoints"]
    example = _example(".png")
    overlay_path, mask_path, label = client.predict(handle_file(str(example)), api_name="/predict")
    size = Image.open(example).size
    for path in (overlay_path, mask_path):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == size
    confidences = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert set(confidences) == set(CLASSES) and sum(confidences.values()) == pytest.approx(1.0, abs=1e-6)

    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    with pytest.raises(AppError, match="The file 'notes.txt' is not an image this app can read"):
        client.predict(handle_file(str(text)), api_name="/predict")


def test_app_starts_without_a_model_and_explains_on_first_prediction(
    servers: dict[str, AppServer], browser: object, tmp_path: Path
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
        page.screenshot(path=str(tmp_path / "no-model.png"), animations="disabled")
    finally:
        page.close()
