"""Gradio Space: Oxford-IIIT Pet segmentation with a U-Net trained by beam_seg.

Upload a photo: the app shows the predicted mask blended over it, the mask in the model's palette and the
share of pixels per class. The prediction is the named API endpoint ``/predict`` (``gradio_client``:
``Client(url).predict(handle_file(path), api_name="/predict")`` -> overlay path, mask path, Label dict).

The model is the Hub repo rendered into the constants below by ``python -m beam_seg.publish`` (downloaded
with ``huggingface_hub.snapshot_download`` on the first request; ``HF_TOKEN`` for a private repo,
``HF_ENDPOINT`` for another Hub), or the training output directory in ``BEAM_SEG_MODEL_DIR``, which wins:

    BEAM_SEG_MODEL_DIR=outputs/model python app.py

Nothing heavy happens at import: TensorFlow is imported and the model loaded by the first prediction.
Host and port come from Gradio's ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import segmenter

# Rendered by python -m beam_seg.publish (beam_seg/publish/space.py). Left unrendered, the app needs BEAM_SEG_MODEL_DIR.
MODEL_REPO_ID = "$MODEL_REPO_ID"
MODEL_VERSION = "$MODEL_VERSION"
MODEL_REVISION = "$MODEL_REVISION"
MODEL_REPO_URL = "$MODEL_REPO_URL"

API_NAME = "predict"
HERE = Path(__file__).resolve().parent
EXAMPLES_DIR = HERE / "examples"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")


def model_source(environ: dict[str, str] | None = None) -> segmenter.ModelSource:
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
            The overlay, the colour mask, and ``{class: fraction of pixels}`` (shown as percentages).
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


def legend_html(model: segmenter.LazyModel) -> str:
    """Colour legend of the loaded model's classes (empty until the model is loaded)."""
    if not model.loaded:
        return ""
    loaded = model.get()
    swatches = " ".join(
        f'<span style="display:inline-block;width:0.9em;height:0.9em;vertical-align:middle;'
        f'background:rgb({r},{g},{b});border:1px solid #0003;margin:0 0.3em 0 0.8em"></span>{html.escape(name)}'
        for name, (r, g, b) in zip(loaded.class_names, loaded.palette.tolist(), strict=True)
    )
    size = loaded.image_size
    note = f"<small>The model sees the photo resized to {size}×{size}.</small>"
    return f'<div id="legend">Colours: {swatches}<br>{note}</div>'


def build_demo(model: segmenter.LazyModel | None = None) -> gr.Blocks:
    """The Space's UI; ``model`` defaults to :func:`model_source` loaded lazily."""
    model = model or segmenter.LazyModel(model_source())
    predict = make_predict(model)
    with gr.Blocks(title="Oxford-IIIT Pet segmentation") as demo:
        gr.Markdown(
            "# Oxford-IIIT Pet segmentation\n"
            "Upload a photo of a cat or a dog: a U-Net trained with beam_seg labels every pixel as pet, "
            "background or border (the colour legend appears with the first result).\n\n"
            f"Model: {model.source.describe()}."
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
                mask = gr.Image(label="Mask", type="numpy", format="png", interactive=False, elem_id="mask")
                percentages = gr.Label(label="Pixels per class", show_heading=False, elem_id="percentages")
                legend = gr.HTML(elem_id="legend-box")
        event = button.click(predict, inputs=image, outputs=[overlay, mask, percentages], api_name=API_NAME)
        event.success(lambda: legend_html(model), outputs=legend, api_visibility="private")
    return demo


demo = build_demo()

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    demo.launch()
