"""The published model's card (``README.md``) and the metric lookup that the blessing gate shares with it.

:func:`split_metrics` is the one place that knows the schema of the training stage's ``metrics.json``
(``{"val": {"mean_iou", "pixel_accuracy", "loss", "per_class_iou": {...}}, "test": {...}}``, see
``beam_seg.train``); adapt it there if that schema changes. The card is built with ``ModelCardData`` /
``EvalResult`` so the Hub shows the evaluation as a model-index, and explains how to load the model with
:func:`beam_seg.loader.load_model` and with plain ``tf.saved_model.load``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from beam_seg.formats import CURVES_NAME, EVAL_SPLITS, KERAS_NAME, PREDICTIONS_NAME

__all__ = [
    "DATASET_ID",
    "LIBRARY_NAME",
    "Blessing",
    "evaluate_blessing",
    "render_model_card",
    "split_metrics",
]

# A Keras 3 model: model.keras (what the Hub counts downloads by for library_name keras), the SavedModel export and
# the LiteRT models.
LIBRARY_NAME = "keras"
DATASET_ID = "oxford-iiit-pet"
DATASET_NAME = "Oxford-IIIT Pet (trimaps)"
TAGS: tuple[str, ...] = ("image-segmentation", "semantic-segmentation", "tensorflow", "saved_model", "unet", "beam_seg")
LITERT_TAGS: tuple[str, ...] = ("tflite", "litert")
# Settings of a run that say nothing about the model (and may hold local paths): never published.
RUN_ONLY_SETTINGS = frozenset({"data_dir", "output_dir", "resume", "overwrite", "verbose", "log_level"})
# (metrics.json key, model-index metric type, display name) of the headline metrics.
_HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("mean_iou", "mean_iou", "Mean IoU"),
    ("pixel_accuracy", "accuracy", "Pixel accuracy"),
)
PICTURES: tuple[tuple[str, str], ...] = ((CURVES_NAME, "Training curves"), (PREDICTIONS_NAME, "Predictions"))


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def split_metrics(metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Normalises ``metrics.json`` to ``{split: {"mean_iou", "pixel_accuracy", "loss", "per_class_iou"}}``.

    Reads a ``{"val": {...}, "test": {...}}`` block per split, or flat ``val_mean_iou``-style keys; keeps only
    finite numbers and only the splits that have any.
    """
    out: dict[str, dict[str, Any]] = {}
    for split in EVAL_SPLITS:
        block = metrics.get(split)
        if isinstance(block, Mapping):
            values = {key: _number(block.get(key)) for key in ("mean_iou", "pixel_accuracy", "loss")}
            per_class = block.get("per_class_iou")
        else:
            values = {key: _number(metrics.get(f"{split}_{key}")) for key in ("mean_iou", "pixel_accuracy", "loss")}
            per_class = None
        row: dict[str, Any] = {key: value for key, value in values.items() if value is not None}
        if isinstance(per_class, Mapping):
            row["per_class_iou"] = {str(name): _number(value) for name, value in per_class.items()}
        if row:
            out[split] = row
    return out


@dataclasses.dataclass(frozen=True)
class Blessing:
    """Outcome of the blessing gate.

    Attributes:
        metric: Which number was compared (``"val/mean_iou"``), or ``None`` if there was none.
        value: That number.
        threshold: ``--min_miou``.
        blessed: Whether the model may be pushed.
        reason: One line saying why.
        baseline: The published model it was compared with (``repo@version``), if any (``--bless_against``).
        candidate_value: The candidate's mean IoU in that comparison.
        baseline_value: The baseline's mean IoU on the same split.
        max_regression: How much worse than the baseline the candidate may be.
    """

    metric: str | None
    value: float | None
    threshold: float
    blessed: bool
    reason: str
    baseline: str | None = None
    candidate_value: float | None = None
    baseline_value: float | None = None
    max_regression: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``blessing`` entry."""
        return dataclasses.asdict(self)


def evaluate_blessing(metrics: Mapping[str, Any], threshold: float) -> Blessing:
    """Compares the validation mean IoU (the test one if there is no validation split) with ``threshold``.

    A model without a mean IoU passes only a disabled gate (``threshold <= 0``).
    """
    splits = split_metrics(metrics)
    split = next((s for s in EVAL_SPLITS if "mean_iou" in splits.get(s, {})), None)
    if split is None:
        if threshold <= 0:
            reason = "no mean IoU in metrics.json; the gate is disabled (--min_miou 0)"
            return Blessing(None, None, threshold, True, reason)
        return Blessing(
            None,
            None,
            threshold,
            False,
            f"metrics.json has no finite val or test mean_iou to compare with --min_miou {threshold:g}",
        )
    value = splits[split]["mean_iou"]
    metric = f"{split}/mean_iou"
    if value < threshold:
        return Blessing(metric, value, threshold, False, f"{metric} {value:.4f} is below --min_miou {threshold:g}")
    return Blessing(metric, value, threshold, True, f"{metric} {value:.4f} >= --min_miou {threshold:g}")


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What the card says about the data the model was trained on (``model_config.json``'s ``data``).

    Attributes:
        sentence: How the card's first paragraph names it.
        dataset_id: The Hub dataset to tag (only the real Oxford-IIIT Pet), else ``None``.
        eval_type: ``dataset_type`` of the model-index entries.
        eval_name: ``dataset_name`` of the model-index entries.
    """

    sentence: str
    dataset_id: str | None
    eval_type: str
    eval_name: str


def training_data(config: Mapping[str, Any]) -> TrainingData:
    """The data the model was trained on, as training recorded it from stage 1's ``stats.json``.

    Only the real dataset gets the ``oxford-iiit-pet`` tag; the synthetic sample data is named as such, and a model
    whose config does not say is not credited to either.
    """
    data = config.get("data")
    synthetic = data.get("synthetic") if isinstance(data, Mapping) else None
    name = str(data.get("name") or "") if isinstance(data, Mapping) else ""
    if synthetic is False:
        return TrainingData(f"trained on the {DATASET_NAME}", DATASET_ID, DATASET_ID, name or DATASET_NAME)
    if synthetic is True:
        name = name or "synthetic sample data (python -m beam_seg.sample_data)"
        return TrainingData(
            f"trained on **{name}**: synthetic pictures drawn by `beam_seg`, not photos of real pets, so its "
            "numbers below say nothing about real photos",
            None,
            "synthetic",
            name,
        )
    return TrainingData("trained on data that its `model_config.json` does not name", None, "unknown", "not recorded")


def _eval_results(splits: Mapping[str, Mapping[str, Any]], data: TrainingData) -> list[Any]:
    from huggingface_hub import EvalResult

    results = []
    for split, row in splits.items():
        for key, metric_type, name in _HEADLINE:
            if key in row:
                results.append(
                    EvalResult(
                        task_type="image-segmentation",
                        task_name="Semantic segmentation",
                        dataset_type=data.eval_type,
                        dataset_name=data.eval_name,
                        dataset_split=split,
                        metric_type=metric_type,
                        metric_name=name,
                        metric_value=round(row[key], 4),
                    )
                )
    return results


def published_settings(training: Mapping[str, Any]) -> dict[str, Any]:
    """The training settings worth publishing: no run-only flag, no local path."""

    def is_path(value: object) -> bool:
        return isinstance(value, str) and (value.startswith(("/", "./", "../", "~")) or "://" in value)

    return {k: v for k, v in training.items() if k not in RUN_ONLY_SETTINGS and not is_path(v)}


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return f"`{json.dumps(value, sort_keys=True)}`"
    return f"`{value}`" if value is not None else "—"


def _metrics_table(splits: Mapping[str, Mapping[str, Any]], class_names: Sequence[str]) -> str:
    if not splits:
        return "No evaluation metrics were found in `metrics.json`.\n"
    names = list(class_names) or sorted({c for row in splits.values() for c in row.get("per_class_iou", {})})
    header = ["split", "mean IoU", "pixel accuracy", "loss", *(f"IoU {c}" for c in names)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for split, row in splits.items():
        per_class = row.get("per_class_iou", {})
        cells = [split, *(f"{row[k]:.4f}" if k in row else "—" for k in ("mean_iou", "pixel_accuracy", "loss"))]
        cells += [f"{per_class[c]:.4f}" if per_class.get(c) is not None else "—" for c in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _key_value_table(items: Mapping[str, Any]) -> str:
    if not items:
        return "Not recorded in `model_config.json`.\n"
    lines = ["| parameter | value |", "|---|---|"]
    lines += [f"| {key} | {_fmt(value)} |" for key, value in sorted(items.items())]
    return "\n".join(lines) + "\n"


def _loss_description(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> str | None:
    """What the reported ``loss`` is, as training wrote it (``metrics.json`` or ``model_config.json``)."""
    for source in (metrics, config.get("metrics") or {}):
        text = source.get("loss_description") if isinstance(source, Mapping) else None
        if isinstance(text, str) and text:
            return text
    return None


def _litert_table(metrics: Mapping[str, Any]) -> str:
    """The LiteRT models' mean IoU (LiteRT interpreter) and their difference to the SavedModel, if recorded."""
    litert = metrics.get("litert")
    if not isinstance(litert, Mapping) or not litert:
        return ""
    lines = [
        "| LiteRT model | file | bytes | val mean IoU | test mean IoU | Δ val / test vs SavedModel |",
        "|---|---|---|---|---|---|",
    ]
    for variant, row in litert.items():
        if not isinstance(row, Mapping):
            continue
        delta = row.get("delta_mean_iou") or {}

        def cell(value: object) -> str:
            number = _number(value)
            return "—" if number is None else f"{number:.4f}"

        lines.append(
            f"| {variant} | `{row.get('file', '—')}` | {row.get('bytes', '—')} | "
            f"{cell((row.get('val') or {}).get('mean_iou'))} | {cell((row.get('test') or {}).get('mean_iou'))} | "
            f"{cell(delta.get('val'))} / {cell(delta.get('test'))} |"
        )
    return "\n".join(lines) + "\n"


def _usage(repo_id: str, version: str, config: Mapping[str, Any], files: Sequence[str]) -> str:
    """How to load the model: with Keras alone, with beam_seg, with TensorFlow, with LiteRT (for the files present)."""
    size = config.get("image_size", "S")
    n = len(config.get("classes") or []) or 3
    sections = []
    if KERAS_NAME in files:
        sections.append(f"""With Keras alone (`{KERAS_NAME}`: float pixels `[N, {size}, {size}, 3]` in 0–255,
already resized, → logits; normalisation is inside):

```python
import keras, numpy as np
from huggingface_hub import hf_hub_download
from PIL import Image

model = keras.saving.load_model(hf_hub_download("{repo_id}", "{KERAS_NAME}", revision="{version}"))
image = Image.open("pet.jpg").convert("RGB").resize(({size}, {size}), Image.Resampling.BILINEAR)
mask = model.predict(np.asarray(image, np.float32)[None]).argmax(-1)[0]
```
""")
    sections.append(f"""With beam_seg (the SavedModel; decoding, resizing and normalisation built in):

```python
from beam_seg.loader import load_model

model = load_model("hf://{repo_id}@{version}")
with open("pet.jpg", "rb") as f:
    mask, probabilities = model(f.read())   # or a list of encoded images
```

With TensorFlow only: `saved_model/`'s `serving_default` takes a 1-D string tensor of encoded images
(JPEG/PNG/BMP/GIF, any size) and returns `mask` (uint8 `[N, {size}, {size}]` class ids) and `probabilities`
(float32 `[N, {size}, {size}, {n}]`):

```python
import tensorflow as tf
from huggingface_hub import snapshot_download

path = snapshot_download("{repo_id}", revision="{version}", allow_patterns=["saved_model/*", "model_config.json"])
serve = tf.saved_model.load(f"{{path}}/saved_model").signatures["serving_default"]
(input_name,) = serve.structured_input_signature[1]   # the string input, e.g. "image_bytes"
with open("pet.jpg", "rb") as f:
    out = serve(**{{input_name: tf.constant([f.read()])}})
mask = out["mask"].numpy()[0]
```
""")
    tflite = sorted(f for f in files if f.endswith(".tflite"))
    if tflite:
        names = "`, `".join(tflite)
        sections.append(f"""With LiteRT (`{names}`; no TensorFlow: `pip install ai-edge-litert`, or LiteRT.js
in a browser). The input is the photo already resized to {size}×{size} — TFLite has no antialiased resize — with PIL's
bilinear filter, which matches the SavedModel; normalisation is inside:

```python
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from huggingface_hub import hf_hub_download
from PIL import Image

runner = Interpreter(hf_hub_download("{repo_id}", "{tflite[0]}", revision="{version}")).get_signature_runner()
image = Image.open("pet.jpg").convert("RGB").resize(({size}, {size}), Image.Resampling.BILINEAR)
out = runner(image=np.asarray(image, np.uint8)[None])   # {{"mask": uint8 [1, S, S], "probabilities": ...}}
```
""")
    return "\n".join(sections)


def render_model_card(
    *,
    repo_id: str,
    version: str,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
    files: Sequence[str] = (),
) -> str:
    """The ``README.md`` of a published model: YAML metadata (with a model-index) and a usage/metrics body.

    The card tells the truth about the model: the data it was trained on (:func:`training_data`; only the real
    dataset is tagged), its measured metrics, which loss the reported loss is, and no local path or run-only setting
    (:func:`published_settings`).

    Args:
        repo_id: Model repository (``user/name``).
        version: The published version (tag and branch name).
        config: ``model_config.json`` contents (``{}`` if absent).
        metrics: ``metrics.json`` contents (``{}`` if absent).
        files: Paths that will be in the repository (pictures and usage sections only for the files present).
    """
    from huggingface_hub import ModelCard, ModelCardData

    splits = split_metrics(metrics)
    class_names = [str(c) for c in config.get("classes") or []]
    model_name = repo_id.split("/")[-1]
    data = training_data(config)
    tags = [
        *TAGS,
        *(LITERT_TAGS if any(f.endswith(".tflite") for f in files) else ()),
        *([data.dataset_id] if data.dataset_id else []),
    ]
    card_data = ModelCardData(
        library_name=LIBRARY_NAME,
        pipeline_tag="image-segmentation",
        tags=tags,
        datasets=[data.dataset_id] if data.dataset_id else None,
        metrics=["mean_iou", "accuracy"],
        model_name=model_name,
        eval_results=_eval_results(splits, data) or None,
    )
    classes = ", ".join(f"{i} = `{c}`" for i, c in enumerate(class_names)) or "see `model_config.json`"
    training = published_settings(
        {**{f"model.{k}": v for k, v in (config.get("model") or {}).items()}, **dict(config.get("training") or {})}
    )
    data_block = config.get("data") if isinstance(config.get("data"), Mapping) else {}
    counts = data_block.get("num_examples") if isinstance(data_block.get("num_examples"), Mapping) else {}
    records = ", ".join(f"{split} {count}" for split, count in counts.items())
    records_note = f"Records: {records}.\n\n" if records else ""
    versions = config.get("versions") or {}
    pictures = "\n".join(f"![{title}]({name})\n" for name, title in PICTURES if name in files)
    loss = _loss_description(config, metrics)
    loss_note = f"\n`loss` is {loss}.\n" if loss else ""
    litert = _litert_table(metrics)
    litert_note = (
        f"\nThe LiteRT models, evaluated with the LiteRT interpreter on the same records:\n\n{litert}" if litert else ""
    )
    body = f"""
# {model_name}

Semantic segmentation of pets into {len(class_names) or "3"} classes ({classes}), {data.sentence}, with
`beam_seg` (Apache Beam → TFRecords → Keras U-Net → Hugging Face Hub).
This revision is version **`{version}`** (a tag and a branch of this repository; published versions are
immutable — pin `revision="{version}"` or its commit sha for reproducible results).

## Evaluation

{_metrics_table(splits, class_names)}{loss_note}{litert_note}
## How to use

{_usage(repo_id, version, config, files)}
`model_config.json` holds the image size, class names, colour palette, preprocessing, the LiteRT contract and the
training settings.

## Training

{records_note}{_key_value_table(training)}
{pictures}
## Files

{chr(10).join(f"- `{name}`" for name in sorted(files) if not name.startswith("saved_model/")) or "- (none)"}
- `saved_model/` (TensorFlow SavedModel)

## Software

{_key_value_table(dict(versions))}"""
    content = f"---\n{card_data.to_yaml()}\n---\n{body}"
    return ModelCard(content).content  # Parses the metadata back: fails here, not on the Hub, if it is invalid.
