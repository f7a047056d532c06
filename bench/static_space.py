"""Benchmark of the static Space (``apps/static/semantic_segmentation``): LiteRT.js in headless Chromium.

One training output directory (its ``model.tflite`` and ``model_config.json``) is uploaded to a local ``HubServer``
(tests/hubserver/) and the template is rendered for it with the publisher's own functions; the LiteRT.js runtime
is served from ``tests/static_space/node_modules`` (``npm ci`` there) on another origin, as the CDN would. Each
round opens the page in a fresh browser context (empty cache: what a first visitor waits for) and reports:

- ``runtime_bytes``: bytes of the runtime files the page fetched (JS + wasm, uncompressed; the CDN compresses);
- ``runtime_ms``: page script start → LiteRT.js loaded and its wasm instantiated (SRI checks included);
- ``model_ms``: page script start → model files downloaded and compiled (runs alongside the runtime load);
- ``first_ms`` / ``median_ms``: one example clicked ``--clicks`` times: resize + ``model.run`` + copying the outputs,
  the first call and the median of the others (drawing the overlay is not included).

Loopback serving: network time is not part of these numbers. Usage::

    python bench/static_space.py --model_dir outputs/model [--rounds 3] [--clicks 20] [--screenshot PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from hubserver import DEFAULT_TOKEN, DEFAULT_USER, HubServer  # noqa: E402
from test_app_browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from test_static_space import TEMPLATE, StaticServer, npm_package_dir  # noqa: E402

MODEL_REPO = f"{DEFAULT_USER}/bench-static-space"


def _served_size(runtime: tuple[str, Path, Path], url: str) -> int:
    """Bytes of ``url`` if it is a runtime file: under the runtime server, or the vendored module."""
    runtime_url, package, site = runtime
    if url.startswith(runtime_url + "/"):
        return (package / url.removeprefix(runtime_url + "/")).stat().st_size
    if "/vendor/" in url:
        return (site / "vendor" / url.rsplit("/", 1)[1]).stat().st_size
    return 0


def _measure(
    browser: object, url: str, runtime: tuple[str, Path, Path], clicks: int, screenshot: str | None
) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_function("['ready', 'error'].includes(document.body.dataset.state)", timeout=120_000)
        if page.evaluate("document.body.dataset.state") == "error":
            raise SystemExit(f"the page failed: {page.inner_text('#error')}")
        for i in range(clicks):
            page.click('#examples button[data-src="examples/Abyssinian_1.jpg"]')
            page.wait_for_function("n => window.__timings.inferenceMs.length >= n", arg=i + 1, timeout=60_000)
            page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)
        timings = page.evaluate("window.__timings")
        # Cross-origin resource entries carry no sizes (no Timing-Allow-Origin): count the served files' bytes.
        fetched = page.evaluate('performance.getEntriesByType("resource").map(e => e.name)')
        runtime_bytes = sum(_served_size(runtime, name) for name in fetched)
        if screenshot:
            page.screenshot(path=screenshot, full_page=True)
    finally:
        context.close()
    inference = timings["inferenceMs"]
    return {
        "runtime_bytes": runtime_bytes,
        "runtime_ms": timings["runtimeMs"],
        "model_ms": timings["modelMs"],
        "first_ms": inference[0],
        "median_ms": statistics.median(inference[1:]) if len(inference) > 1 else inference[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True, help="A training output directory with model.tflite.")
    parser.add_argument("--rounds", type=int, default=3, help="Cold page loads (default: %(default)s).")
    parser.add_argument("--clicks", type=int, default=20, help="Predictions per page load (default: %(default)s).")
    parser.add_argument("--screenshot", help="Save the last round's page here (PNG).")
    parser.add_argument("--output_json", default=str(REPO_ROOT / "bench" / "results" / "static_space.json"))
    args = parser.parse_args()

    from huggingface_hub import CommitOperationAdd, HfApi
    from playwright.sync_api import sync_playwright

    from beam_seg.publish import space

    model_dir = Path(args.model_dir)
    with (
        tempfile.TemporaryDirectory(prefix="bench-static-space-") as tmp,
        HubServer(storage_dir=Path(tmp) / "hub") as hub,
    ):
        hub.add_user(DEFAULT_USER, DEFAULT_TOKEN)
        api = HfApi(endpoint=hub.url, token=DEFAULT_TOKEN)
        api.create_repo(MODEL_REPO)
        files = [CommitOperationAdd(name, str(model_dir / name)) for name in ("model.tflite", "model_config.json")]
        revision = api.create_commit(MODEL_REPO, operations=files, commit_message="bench").oid
        runtime = StaticServer(npm_package_dir("core"), cors=True)
        values = space.placeholder_values(
            model_repo=MODEL_REPO,
            version="bench",
            revision=revision,
            endpoint=hub.url,
            extra={"LITERT_JS_URL": runtime.url},
        )
        site = Path(tmp) / "site"
        for path, data in space.render_template(space.load_template(str(TEMPLATE)), values).items():
            (site / path).parent.mkdir(parents=True, exist_ok=True)
            (site / path).write_bytes(data)
        pages = StaticServer(site)
        rounds = []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for i in range(args.rounds):
                    shot = args.screenshot if i == args.rounds - 1 else None
                    served = (runtime.url, npm_package_dir("core"), site)
                    rounds.append(_measure(browser, pages.url + "/index.html", served, args.clicks, shot))
                    time.sleep(1)
                browser.close()
        finally:
            pages.close()
            runtime.close()

    size = json.loads((model_dir / "model_config.json").read_text())["image_size"]
    summary = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    tflite = os.path.getsize(model_dir / "model.tflite")
    print(f"static Space, S={size}, model.tflite {tflite} bytes, medians of {len(rounds)} cold loads:")
    for key, value in summary.items():
        print(f"  {key:14s} {value:12.1f}   rounds: {', '.join(f'{r[key]:.1f}' for r in rounds)}")
    Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output_json).write_text(json.dumps({"image_size": size, "rounds": rounds, "median": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
