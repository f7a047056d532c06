"""The static Space template ``apps/static/semantic_segmentation``: LiteRT.js in a real browser, the model from the Hub.

The template is rendered with ``beam_seg.publish.space`` and served by a local static server; the LiteRT.js runtime
(``@litertjs/core``, pinned) is served from ``tests/static_space/node_modules`` (``npm ci`` there, which
``run_tests.sh`` does; nothing is downloaded at test time) by a second server on another origin, as a CDN would;
the tiny trained model (shared with ``test_app.py``) is uploaded with the real ``huggingface_hub`` client to the
Hub test double, which the page reads at the commit sha. Chromium comes from Debian, driven by Playwright.

The page must compute what the Python runtime computes: its resized input is compared byte for byte with PIL's
``Image.resize(..., BILINEAR)`` and its mask with ``ai_edge_litert`` on that input.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_app import CLASSES, MODEL_REPO, train_tiny_model
from test_app import TEMPLATE as GRADIO_TEMPLATE
from test_app_browser import CHROMIUM, CHROMIUM_ARGS

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "apps" / "static" / "semantic_segmentation"
NPM_DIR = REPO / "tests" / "static_space"
NODE_MODULES = NPM_DIR / "node_modules" / "@litertjs"
VERSION = "v20261123T010203Z"
TIMEOUT_MS = 60_000
PLACEHOLDER = re.compile(r"\$\{?(MODEL_[A-Z_]+|HUB_URL|LITERT_JS_URL)\b")


# ---------------------------------------------------------------- servers and fixtures


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; ``cors`` adds ``Access-Control-Allow-Origin: *`` (what the CDN sends)."""

    cors = False
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript"}

    def end_headers(self) -> None:
        if self.cors:
            self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class StaticServer:
    """A threaded HTTP server for one directory on a free port of 127.0.0.1."""

    def __init__(self, directory: Path, *, cors: bool = False) -> None:
        handler = type("Handler", (_QuietHandler,), {"cors": cors})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=directory))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def npm_package_dir(name: str) -> Path:
    path = NODE_MODULES / name
    if not (path / "package.json").is_file():
        pytest.fail(
            f"{path} is missing: install the pinned LiteRT.js with `npm ci --prefix {NPM_DIR.relative_to(REPO)}` "
            "(run_tests.sh does this)."
        )
    return path


@pytest.fixture(scope="module")
def runtime_server() -> Iterator[StaticServer]:
    """The npm package @litertjs/core, served on its own origin with CORS like the CDN (LITERT_JS_URL)."""
    server = StaticServer(npm_package_dir("core"), cors=True)
    yield server
    server.close()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(train_tiny_model(tmp_path_factory))


@pytest.fixture
def published(hub_api: object, tiny_model: Path) -> str:
    """The tiny model's LiteRT files in a public repo on the Hub test double; returns the commit sha."""
    from huggingface_hub import CommitOperationAdd

    hub_api.create_repo(MODEL_REPO, exist_ok=True)
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(tiny_model / name))
        for name in ("model.tflite", "model_config.json")
    ]
    return hub_api.create_commit(MODEL_REPO, operations=operations, commit_message="Tiny model").oid


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `apt-get update && apt-get install -y chromium` (run_tests.sh does this).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def render(dest: Path, *, hub_url: str, revision: str, litert_js_url: str) -> dict[str, bytes]:
    """Renders the template with the publisher's own functions into ``dest``; returns the rendered files."""
    from beam_seg.publish import space

    values = space.placeholder_values(
        model_repo=MODEL_REPO,
        version=VERSION,
        revision=revision,
        endpoint=hub_url,
        extra={"LITERT_JS_URL": litert_js_url},
    )
    files = space.render_template(space.load_template(str(TEMPLATE)), values)
    for path, data in files.items():
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        (dest / path).write_bytes(data)
    return files


@pytest.fixture
def open_page(browser: object, runtime_server: StaticServer, tmp_path: Path) -> Iterator[object]:
    """Renders and serves the Space; ``open_page(hub_url, revision)`` returns a page on it (console kept)."""
    servers: list[StaticServer] = []
    pages: list[object] = []

    def opener(hub_url: str, revision: str, litert_js_url: str | None = None) -> object:
        site = tmp_path / f"site{len(servers)}"
        render(site, hub_url=hub_url, revision=revision, litert_js_url=litert_js_url or runtime_server.url)
        servers.append(StaticServer(site))
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.console_lines = []
        page.on("console", lambda m: page.console_lines.append(f"{m.type}: {m.text}"))
        page.goto(servers[-1].url + "/index.html")
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()
    for server in servers:
        server.close()


def _wait_state(page: object, state: str) -> None:
    try:
        page.wait_for_function("s => ['error', s].includes(document.body.dataset.state)", arg=state, timeout=TIMEOUT_MS)
    except Exception:
        pytest.fail(f"page never reached {state!r}; console:\n" + "\n".join(page.console_lines[-30:]))
    if state != "error" and page.evaluate("document.body.dataset.state") == "error":
        pytest.fail(f"page error: {page.inner_text('#error')}\nconsole:\n" + "\n".join(page.console_lines[-30:]))


def _wait_result(page: object, name: str) -> dict:
    page.wait_for_selector(f'#results[data-file="{name}"]', state="attached", timeout=TIMEOUT_MS)
    _wait_state(page, "ready")
    return page.evaluate("window.__lastResult")


# ---------------------------------------------------------------- what Python computes


def python_litert(model_dir: Path, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """PIL's bilinear resize of the stored pixels (EXIF ignored, as in training) and ai_edge_litert's mask."""
    from ai_edge_litert.interpreter import Interpreter

    size = json.loads((model_dir / "model_config.json").read_text())["image_size"]
    with Image.open(path) as image:
        resized = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
    interpreter = Interpreter(model_path=str(model_dir / "model.tflite"))
    mask = interpreter.get_signature_runner("serving_default")(image=resized[None])["mask"][0]
    return resized, mask


def _check_against_python(result: dict, model_dir: Path, path: Path, *, exact_input: bool) -> None:
    resized, mask = python_litert(model_dir, path)
    size = resized.shape[0]
    with Image.open(path) as image:
        assert (result["width"], result["height"]) == image.size  # Stored orientation: no EXIF rotation.
    page_input = np.array(result["input"], np.uint8).reshape(size, size, 3)
    if exact_input:  # Lossless formats decode to the same pixels: the resize must then be PIL's, byte for byte.
        np.testing.assert_array_equal(page_input, resized)
    else:  # JPEG decoders may differ by a level here and there.
        assert np.abs(page_input.astype(int) - resized).max() <= 3
    page_mask = np.array(result["mask"], np.uint8).reshape(size, size)
    agree = float((page_mask == mask).mean())
    assert agree >= 0.99, f"{path.name}: page and Python masks agree on {agree:.2%} of pixels"


# ---------------------------------------------------------------- tests without a browser


def _sri(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def _page_pins(html: str) -> tuple[dict, dict]:
    importmap = json.loads(re.search(r'<script type="importmap">(.*?)</script>', html, re.S).group(1))
    config = json.loads(re.search(r'<script type="application/json" id="space-config">(.*?)</script>', html, re.S)[1])
    return importmap, config


def test_the_pinned_runtime_is_the_npm_package_the_tests_install() -> None:
    """The SRI hashes in index.html are those of the npm-installed files: the CDN pin runs the tested bytes."""
    from beam_seg.publish import space

    lock = json.loads((NPM_DIR / "package-lock.json").read_text())
    locked = {path.removeprefix("node_modules/"): entry for path, entry in lock["packages"].items() if path}
    assert set(locked) == {"@litertjs/core", "@litertjs/wasm-utils"}
    assert all(
        entry.get("resolved", "https://registry.npmjs.org/").startswith("https://registry.npmjs.org/")
        for entry in locked.values()
    )
    version = locked["@litertjs/core"]["version"]
    assert locked["@litertjs/wasm-utils"]["version"] == version
    assert json.loads((npm_package_dir("core") / "package.json").read_text())["version"] == version

    html = (TEMPLATE / "index.html").read_text()
    importmap, config = _page_pins(html)
    core, utils = npm_package_dir("core"), npm_package_dir("wasm-utils")
    vendored = TEMPLATE / "vendor" / f"litertjs-wasm-utils-{version}.js"
    expected_integrity = {
        "$LITERT_JS_URL/dist/index.js": _sri(core / "dist" / "index.js"),
        f"./vendor/{vendored.name}": _sri(utils / "dist" / "index.js"),
    }
    expected_wasm = {
        p.name: _sri(p) for p in sorted((core / "wasm").iterdir()) if "threaded" not in p.name and "jspi" not in p.name
    }
    hint = f"index.html's pins for @litertjs/core {version}: {json.dumps({**expected_integrity, **expected_wasm})}"
    assert importmap["integrity"] == expected_integrity, hint
    assert importmap["imports"] == {
        "@litertjs/core": "$LITERT_JS_URL/dist/index.js",
        "@litertjs/wasm-utils": f"./vendor/{vendored.name}",
    }
    assert config["litert"]["wasmFiles"] == expected_wasm, hint
    assert config["litert"] == {"version": version, "wasmDir": "$LITERT_JS_URL/wasm/", "wasmFiles": expected_wasm}
    assert vendored.read_bytes() == (utils / "dist" / "index.js").read_bytes()
    # The publisher's default runtime URL is the same package and version on the CDN.
    cdn = f"https://cdn.jsdelivr.net/npm/@litertjs/core@{version}"
    assert (version, cdn) == (space.LITERT_JS_VERSION, space.LITERT_JS_URL)


def test_rendering_leaves_no_placeholder_and_keeps_binary_files(tmp_path: Path) -> None:
    files = render(
        tmp_path,
        hub_url="https://huggingface.co",
        revision="0123456789abcdef" * 2 + "01234567",
        litert_js_url="https://cdn.example/core@1",
    )
    leftovers = {
        path: PLACEHOLDER.findall(data.decode())
        for path, data in files.items()
        if path.endswith((".html", ".js", ".css", ".md"))
    }
    assert {path: found for path, found in leftovers.items() if found} == {}
    from beam_seg.publish import space

    assert space.leftover_placeholders(files) == {}
    html = files["index.html"].decode()
    assert (
        "https://huggingface.co" in html and MODEL_REPO in html and "https://cdn.example/core@1/dist/index.js" in html
    )
    _, config = _page_pins(html)  # Still valid JSON after rendering.
    assert config["modelRevision"] == "0123456789abcdef" * 2 + "01234567"
    # Every example is offered on the page, and they are the Gradio template's pictures.
    examples = sorted(p.name for p in (TEMPLATE / "examples").iterdir())
    assert examples == sorted(p.name for p in (GRADIO_TEMPLATE / "examples").iterdir())
    for name in examples:
        assert f'data-src="examples/{name}"' in html
        assert files[f"examples/{name}"] == (GRADIO_TEMPLATE / "examples" / name).read_bytes()
    front = files["README.md"].decode().split("---")[1]
    assert "sdk: static" in front and "app_file: index.html" in front


# ---------------------------------------------------------------- the page in Chromium


def test_resize_is_pils_bilinear_byte_for_byte(open_page: object, hub_server: object) -> None:
    """resize.js against PIL on random pixels: shrinking, enlarging, one axis only, and PIL's very tall images."""
    page = open_page(hub_server.url, "0" * 40)  # The model is not needed here.
    rng = np.random.default_rng(0)
    cases = []
    for width, height, size in (
        (198, 256, 32),
        (640, 480, 128),
        (10, 13, 128),
        (128, 300, 128),
        (5, 700, 16),
        (64, 64, 64),
    ):
        rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
        expected = np.asarray(Image.fromarray(rgba[..., :3]).resize((size, size), Image.Resampling.BILINEAR))
        cases.append((width, height, size, rgba, expected))
    got = page.evaluate(
        """async cases => {
            const { resizeBilinear } = await import("./resize.js");
            const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const text = (pixels) => btoa(String.fromCharCode(...pixels));
            return cases.map(([w, h, s, b64]) => text(resizeBilinear(bytes(b64), w, h, s, s, 4)));
        }""",
        [[w, h, s, base64.b64encode(rgba.tobytes()).decode()] for w, h, s, rgba, _ in cases],
    )
    for (width, height, size, _, expected), b64 in zip(cases, got, strict=True):
        page_out = np.frombuffer(base64.b64decode(b64), np.uint8).reshape(size, size, 3)
        np.testing.assert_array_equal(page_out, expected, err_msg=f"{width}x{height} -> {size}")


def test_overlay_is_beam_seg_drawings_pixel_for_pixel(open_page: object, hub_server: object) -> None:
    """segmentation.js draws the overlay as beam_seg.drawing does: same opacities, rounding and pet outline."""
    from beam_seg import drawing
    from beam_seg.pets import MASK_CLASSES, PALETTE

    page = open_page(hub_server.url, "0" * 40)  # The model is not needed here.
    rng = np.random.default_rng(3)
    height, width = 37, 53
    rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)  # The photo's alpha is not used.
    mask = rng.integers(0, len(MASK_CLASSES), (height, width), dtype=np.uint8)
    mask[8:30, 10:40] = 0  # A pet inside the picture: outlined all round.
    mask[:12, 45:] = 0  # And one cut by the frame: not outlined along it.
    expected = drawing.overlay(rgba[..., :3], mask, PALETTE, MASK_CLASSES)
    # Exact .5 ties (pet and background) that Math.round would send up where numpy's rint goes to even.
    alphas = np.array([drawing.CLASS_ALPHA.get(name, drawing.DEFAULT_ALPHA) for name in MASK_CLASSES])
    blend = (1 - alphas[mask][..., None]) * rgba[..., :3] + alphas[mask][..., None] * np.array(PALETTE)[mask]
    assert (np.floor(blend + 0.5) != np.rint(blend)).sum() > 100

    got = page.evaluate(
        """async ([b64, mask, width, height, colours, classes]) => {
            const seg = await import("./segmentation.js");
            const bytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
            const photo = new Uint8ClampedArray(bytes(b64));
            const out = seg.paintOverlay(photo, bytes(mask), width, height, colours, classes);
            return {
                overlay: btoa(String.fromCharCode(...out)),
                alphas: seg.overlayAlphas(classes),
                outline: [seg.OUTLINE_CLASS, seg.OUTLINE_WIDTH],
            };
        }""",
        [
            base64.b64encode(rgba.tobytes()).decode(),
            base64.b64encode(mask.tobytes()).decode(),
            width,
            height,
            [list(colour) for colour in PALETTE],
            list(MASK_CLASSES),
        ],
    )
    assert got["alphas"] == alphas.tolist()
    assert got["outline"] == [drawing.OUTLINE_CLASS, drawing.OUTLINE_WIDTH]
    page_out = np.frombuffer(base64.b64decode(got["overlay"]), np.uint8).reshape(height, width, 4)
    assert (page_out[..., 3] == 255).all()
    np.testing.assert_array_equal(page_out[..., :3], expected)


def test_example_and_upload_segment_like_python(
    open_page: object, hub_server: object, published: str, tiny_model: Path, tmp_path: Path
) -> None:
    page = open_page(hub_server.url, published)
    _wait_state(page, "ready")
    assert MODEL_REPO in page.inner_text("#model-line") and published[:7] in page.inner_text("#model-line")

    # An example, clicked.
    example = TEMPLATE / "examples" / "Abyssinian_1.jpg"
    page.click(f'#examples button[data-src="examples/{example.name}"]')
    result = _wait_result(page, example.name)
    _check_against_python(result, tiny_model, example, exact_input=False)
    names = page.locator("#percentages dt").all_inner_texts()
    values = [float(v.strip().rstrip("%")) for v in page.locator("#percentages dd .value").all_inner_texts()]
    assert names == list(CLASSES)
    assert abs(sum(values) - 100.0) <= 0.05 * len(values) + 1e-9, values  # Each shown to 0.1%.
    bar_colours = page.locator("#percentages .fill").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)"
    )
    assert bar_colours == ["rgb(255, 127, 14)", "rgb(31, 119, 180)", "rgb(255, 221, 0)"]  # The palette, by class.
    with Image.open(example) as image:
        assert page.evaluate("[document.querySelector('#overlay').width, document.querySelector('#mask').height]") == [
            image.width,
            image.height,
        ]
    assert all(name in page.inner_text("#legend") for name in CLASSES)
    assert page.locator("#error").is_hidden()
    page.screenshot(path=str(tmp_path / "static-example.png"), full_page=True)

    # An upload: the PNG example (lossless: the page's input must be PIL's bytes exactly).
    png = TEMPLATE / "examples" / "Bengal_1.png"
    page.locator("#upload").set_input_files(str(png))
    _check_against_python(_wait_result(page, png.name), tiny_model, png, exact_input=True)

    # An upload with an EXIF rotation: segmented in its stored orientation, like the training data.
    rotated = tmp_path / "rotated.jpg"
    with Image.open(example) as image:
        exif = Image.Exif()
        exif[0x0112] = 6
        image.save(rotated, quality=95, exif=exif)
    page.locator("#upload").set_input_files(str(rotated))
    _check_against_python(_wait_result(page, rotated.name), tiny_model, rotated, exact_input=False)
    page.screenshot(path=str(tmp_path / "static-upload.png"), full_page=True)

    # Not an image: one readable line.
    bogus = tmp_path / "notes.png"
    bogus.write_text("not a picture")
    page.locator("#upload").set_input_files(str(bogus))
    _wait_state(page, "error")
    assert (
        page.inner_text("#error")
        == 'The file "notes.png" is not an image this page can read (JPEG, PNG, WebP, GIF or BMP).'
    )


def test_a_model_that_cannot_be_fetched_is_one_readable_line(
    open_page: object, hub_server: object, published: str, tmp_path: Path
) -> None:
    page = open_page(hub_server.url, "f" * 40)  # A revision the repo does not have.
    _wait_state(page, "error")
    error = page.inner_text("#error")
    assert "\n" not in error
    assert error.startswith(
        f"Could not download model_config.json of {MODEL_REPO} at revision ffffffffffff: HTTP 404"
    ), error
    page.screenshot(path=str(tmp_path / "static-no-model.png"))
    page.click('#examples button[data-src="examples/Bengal_1.png"]')  # A click says it again.
    _wait_state(page, "error")
    assert page.inner_text("#error") == error


def test_runtime_bytes_other_than_the_pinned_ones_are_refused(
    open_page: object, hub_server: object, published: str, tmp_path: Path
) -> None:
    """A CDN serving other bytes for the pinned version: the page refuses to run them and says so."""
    tampered = tmp_path / "tampered-core"
    for path in npm_package_dir("core").rglob("*"):
        if path.is_file():
            (tampered / path.relative_to(npm_package_dir("core"))).parent.mkdir(parents=True, exist_ok=True)
            (tampered / path.relative_to(npm_package_dir("core"))).write_bytes(path.read_bytes())
    for wasm in (tampered / "wasm").glob("*.wasm"):
        wasm.write_bytes(wasm.read_bytes() + b"\0")
    server = StaticServer(tampered, cors=True)
    try:
        page = open_page(hub_server.url, published, litert_js_url=server.url)
        _wait_state(page, "error")
        assert page.inner_text("#error").startswith(
            f"Could not load the LiteRT.js runtime file {server.url}/wasm/litert_wasm_"
        )
    finally:
        server.close()


def test_the_unrendered_template_says_so(browser: object, tmp_path: Path) -> None:
    server = StaticServer(TEMPLATE)
    page = browser.new_page()
    try:
        page.goto(server.url + "/index.html")
        page.wait_for_function("document.body.dataset.state === 'error'", timeout=TIMEOUT_MS)
        assert page.inner_text("#error").startswith('This page is the unrendered template (hubUrl is "$HUB_URL")')
    finally:
        page.close()
        server.close()


def test_the_hub_double_answers_downloads_with_cors(hub_server: object, published: str) -> None:
    """The page reads the model cross-origin: /resolve allows the caller's Origin, on errors too, as huggingface.co."""
    import urllib.error
    import urllib.request

    origin = "http://127.0.0.1:1"
    for revision, status in ((published, 200), ("f" * 40, 404)):
        url = f"{hub_server.url}/{MODEL_REPO}/resolve/{revision}/model_config.json"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers={"Origin": origin})) as response:
                got, headers = response.status, response.headers
        except urllib.error.HTTPError as err:
            got, headers = err.code, err.headers
        assert got == status
        assert headers["Access-Control-Allow-Origin"] == origin
        assert "X-Repo-Commit" in headers["Access-Control-Expose-Headers"]
