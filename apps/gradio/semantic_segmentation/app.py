"""Gradio Space: Oxford-IIIT Pet segmentation with a U-Net trained by beam_seg, run by LiteRT on the CPU.

Upload a photo: the app shows the classes drawn over it, the mask in the model's palette and the share of
pixels per class as bars in the class colours. The prediction is the named API endpoint ``/predict``
(``gradio_client``: ``Client(url).predict(handle_file(path), api_name="/predict")`` -> overlay path, mask path,
Label dict ``{class: fraction of pixels}``).

The model is ``model.tflite`` (LiteRT, run with ``ai-edge-litert``; no TensorFlow) and ``model_config.json`` of
the Hub repo rendered into the constants below by ``python -m beam_seg.publish``, at the pinned commit. The Space
fetches both at build time (``preload_from_hub`` in README.md), so ``hf_hub_download`` finds them in its cache;
``HF_TOKEN`` for a private repo, ``HF_ENDPOINT`` for another Hub. The training output directory in
``BEAM_SEG_MODEL_DIR`` wins:

    BEAM_SEG_MODEL_DIR=outputs/model python app.py

Hardware: the same app runs on ``cpu-basic`` and on ZeroGPU. ZeroGPU refuses to start an app that defines no
``@spaces.GPU`` function, so when the ``spaces`` package is importable (Hugging Face installs it on Spaces; it
is not in requirements.txt) the app defines one, :func:`zero_gpu_entry`, which nothing calls: predictions stay on the
CPU with LiteRT (tens of milliseconds at the model's size), so they never wait in ZeroGPU's queue and spend none
of the account's ZeroGPU quota.

Nothing heavy happens at import: the model is loaded by the first prediction. Host and port come from Gradio's
``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import segmenter

try:
    import spaces  # Preinstalled on Hugging Face Spaces (ZeroGPU's decorator); absent elsewhere.
except ImportError:
    spaces = None

# Rendered by python -m beam_seg.publish (beam_seg/publish/space.py). Left unrendered, the app needs BEAM_SEG_MODEL_DIR.
MODEL_REPO_ID = "$MODEL_REPO_ID"
MODEL_VERSION = "$MODEL_VERSION"
MODEL_REVISION = "$MODEL_REVISION"
MODEL_REPO_URL = "$MODEL_REPO_URL"

API_NAME = "predict"
HERE = Path(__file__).resolve().parent
EXAMPLES_DIR = HERE / "examples"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")

if spaces is not None:

    @spaces.GPU
    def zero_gpu_entry() -> str:
        """Declared for ZeroGPU's start-up check only; no event calls it, so no request ever asks for a GPU."""
        return "beam_seg's pet segmentation runs on the CPU with LiteRT."


def model_source(environ: Mapping[str, str] | None = None) -> segmenter.ModelSource:
    """The model this Space serves: ``BEAM_SEG_MODEL_DIR`` if set, else the rendered Hub repo and revision."""
    return segmenter.ModelSource.from_env(
        os.environ if environ is None else environ,
        repo_id=MODEL_REPO_ID,
        version=MODEL_VERSION,
        revision=MODEL_REVISION,
        repo_url=MODEL_REPO_URL,
    )


def example_paths() -> list[str]:
    """The example pictures shipped in ``examples/``, sorted by name."""
    if not EXAMPLES_DIR.is_dir():
        return []
    return [str(p) for p in sorted(EXAMPLES_DIR.iterdir()) if p.suffix.lower() in _IMAGE_SUFFIXES]


def _html(message: str) -> str:
    """``gr.Error`` renders its message as HTML: escape markup, keep quotes readable for API clients."""
    return html.escape(message, quote=False)


def image_input(**kwargs: Any) -> gr.Image:
    """A ``gr.Image`` input whose preprocessing turns a file that is not an image into a readable ``gr.Error``.

    Plain ``gr.Image`` opens every upload with PIL before the event function runs, so a text file sent
    through the API would end in a bare PIL traceback. The instance's ``preprocess`` is wrapped rather than
    subclassed: Gradio writes a ``.pyi`` stub next to the file of every component subclass, which would
    land in the Space.
    """
    component = gr.Image(**kwargs)
    preprocess = component.preprocess

    def checked_preprocess(payload: Any) -> Any:
        try:
            return preprocess(payload)
        except gr.Error:
            raise
        except Exception:
            message = _html(segmenter.not_an_image_message(getattr(payload, "orig_name", None)))
            raise gr.Error(message, title="Not an image", print_exception=False) from None

    component.preprocess = checked_preprocess  # type: ignore[method-assign]
    return component


def make_predict(model: segmenter.LazyModel) -> Callable[[str | None], tuple[np.ndarray, np.ndarray, dict]]:
    """The event function of ``/predict``, bound to ``model`` (loaded on its first call)."""

    def predict(image: str | None) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Segments a pet photo.

        Args:
            image: Path of the uploaded image (JPEG, PNG, ... any size).

        Returns:
            The overlay, the colour mask, and ``{class: fraction of the mask's pixels}``.
        """
        if not image:
            raise gr.Error("Upload a picture of a cat or a dog first (JPEG or PNG).", title="No image")
        path = Path(image)
        if not model.loaded:
            gr.Info("Loading the model (first request only)…")
        try:
            loaded = model.get()
        except segmenter.ModelLoadError as e:
            raise gr.Error(_html(str(e)), duration=None, title="Model not available", print_exception=False) from None
        try:
            result = segmenter.segment(path.read_bytes(), loaded, name=path.name)
        except (segmenter.NotAnImageError, OSError) as e:
            message = str(e) if isinstance(e, segmenter.NotAnImageError) else segmenter.not_an_image_message(path.name)
            raise gr.Error(_html(message), title="Not an image", print_exception=False) from None
        return result.overlay, result.mask, {name: pct / 100.0 for name, pct in result.percentages.items()}

    return predict


def summary_html(model: segmenter.LazyModel, fractions: Mapping[str, float] | None) -> str:
    """Per-class bars in the class colours, with percentages, doubling as the overlay's legend.

    Args:
        model: The app's model (loaded by the prediction this summarises).
        fractions: ``{class: fraction of pixels}`` as ``/predict`` returned it (any order).
    """
    if not model.loaded or not fractions:
        return ""
    loaded = model.get()
    rows = []
    for name, (r, g, b) in zip(loaded.class_names, loaded.palette.tolist(), strict=True):
        percent = 100.0 * float(fractions.get(name, 0.0))
        colour = f"rgb({r},{g},{b})"
        rows.append(
            f'<div class="class-row" data-class="{html.escape(name)}" data-percent="{percent:.4f}" '
            f'data-colour="{colour}" style="display:flex;align-items:center;gap:0.5em;margin:0.25em 0">'
            f'<span class="swatch" style="width:1em;height:1em;flex:none;background:{colour};'
            f'border:1px solid #0004"></span>'
            f'<span class="name" style="width:6em">{html.escape(name)}</span>'
            f'<span style="flex:1;height:1.1em;background:#8882;border-radius:3px;overflow:hidden">'
            f'<span class="bar" style="display:block;height:100%;width:{percent:.2f}%;background:{colour}"></span>'
            f"</span>"
            f'<span class="value" style="width:4.5em;text-align:right">{percent:.1f}%</span></div>'
        )
    alphas = ", ".join(
        f"{html.escape(name)} {100 * segmenter.CLASS_ALPHA.get(name, segmenter.DEFAULT_ALPHA):.0f}%"
        for name in loaded.class_names
    )
    outlined = segmenter.OUTLINE_CLASS
    outline = f"; the {html.escape(outlined)} is also outlined in its colour" if outlined in loaded.class_names else ""
    size = loaded.image_size
    note = (
        f"<small>Share of the photo's pixels per class. In the overlay each colour covers the photo at "
        f"{alphas}{outline}. The model sees the photo resized to {size}×{size}; its class probabilities are "
        "scaled back up smoothly.</small>"
    )
    return f'<div id="summary">{"".join(rows)}{note}</div>'


def build_demo(model: segmenter.LazyModel | None = None) -> gr.Blocks:
    """The Space's UI; ``model`` defaults to :func:`model_source` loaded lazily."""
    model = model or segmenter.LazyModel(model_source())
    predict = make_predict(model)
    with gr.Blocks(title="Oxford-IIIT Pet segmentation") as demo:
        gr.Markdown(
            "# Oxford-IIIT Pet segmentation\n"
            "Upload a photo of a cat or a dog: a U-Net trained with beam_seg labels every pixel as pet, "
            "background or border (the colour legend appears with the first result).\n\n"
            f"Model: {model.source.describe()}, run with LiteRT on the CPU."
        )
        with gr.Row():
            with gr.Column():
                image = image_input(
                    label="Pet photo",
                    type="filepath",
                    image_mode=None,
                    sources=["upload", "clipboard"],
                    elem_id="input-image",
                )
                button = gr.Button("Segment", variant="primary", elem_id="submit")
                examples = example_paths()
                if examples:
                    gr.Examples(
                        examples=[[p] for p in examples],
                        inputs=[image],
                        cache_examples=False,
                        label="Examples (from the synthetic sample data)",
                    )
            with gr.Column():
                overlay = gr.Image(label="Overlay", type="numpy", format="png", interactive=False, elem_id="overlay")
                summary = gr.HTML(elem_id="summary-box")
                mask = gr.Image(label="Mask", type="numpy", format="png", interactive=False, elem_id="mask")
                # The machine-readable percentages of /predict; the page shows them as the coloured bars above.
                percentages = gr.Label(label="Pixels per class", visible=False, elem_id="percentages")
        event = button.click(predict, inputs=image, outputs=[overlay, mask, percentages], api_name=API_NAME)
        event.success(
            lambda fractions: summary_html(model, fractions),
            inputs=percentages,
            outputs=summary,
            api_visibility="private",
        )
    return demo


demo = build_demo()

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    demo.launch()
