"""The model card tells the truth: the training data it names and tags, the loss it reports, no local paths.

Pure rendering (``render_model_card``), parsed back with ``huggingface_hub.ModelCard``; no Hub, no Beam.
"""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard

from beam_seg.publish import model_card

METRICS = {
    "val": {"mean_iou": 0.91, "pixel_accuracy": 0.95, "loss": 0.2, "per_class_iou": {"pet": 0.9}},
    "test": {"mean_iou": 0.9, "pixel_accuracy": 0.94, "loss": 0.21},
    "loss_description": "the training objective: class-weighted cross-entropy + Dice",
    "litert": {
        "float32": {
            "file": "model.tflite",
            "bytes": 130000,
            "val": {"mean_iou": 0.9101},
            "test": {"mean_iou": 0.9},
            "delta_mean_iou": {"val": 0.0001, "test": 0.0},
        },
    },
}
FILES = ["model.keras", "model.tflite", "model_config.json", "metrics.json", "saved_model/saved_model.pb"]


def _config(data: dict | None) -> dict:
    config = {
        "image_size": 128,
        "classes": ["pet", "background", "border"],
        "model": {"architecture": "unet"},
        "training": {
            "epochs": 30,
            "learning_rate": 0.002,
            "data_dir": "/home/me/tfrecords",
            "resume": True,
            "output_dir": "gs://bucket/run/model",
            "seed": 0,
        },
    }
    return config if data is None else {**config, "data": {**data, "num_examples": {"train": 428, "val": 56}}}


def _card(config: dict, files: list[str] = FILES) -> ModelCard:
    return ModelCard(
        model_card.render_model_card(repo_id="u/pets", version="v1", config=config, metrics=METRICS, files=files)
    )


def test_the_real_dataset_is_named_and_tagged() -> None:
    card = _card(_config({"name": "Oxford-IIIT Pet", "synthetic": False}))
    assert card.data.datasets == ["oxford-iiit-pet"] and "oxford-iiit-pet" in card.data.tags
    assert "trained on the Oxford-IIIT Pet (trimaps)" in card.text
    assert {r.dataset_type for r in card.data.eval_results} == {"oxford-iiit-pet"}


@pytest.mark.parametrize(
    "data",
    [{"name": "synthetic sample data (python -m beam_seg.sample_data)", "synthetic": True}, None],
    ids=["synthetic", "not-recorded"],
)
def test_other_data_is_never_credited_to_oxford_iiit_pet(data) -> None:
    card = _card(_config(data))
    assert card.data.datasets is None and "oxford-iiit-pet" not in card.data.tags
    assert "Oxford-IIIT Pet" not in card.text
    assert "oxford-iiit-pet" not in {r.dataset_type for r in card.data.eval_results}
    if data:
        assert "synthetic sample data (python -m beam_seg.sample_data)" in card.text
        assert "say nothing about real photos" in card.text
    else:
        assert "does not name" in card.text


def test_no_local_path_or_run_only_setting_is_published() -> None:
    text = _card(_config({"synthetic": True})).content
    for leaked in ("/home/me", "gs://bucket", "data_dir", "output_dir", "resume"):
        assert leaked not in text, leaked
    assert "learning_rate" in text and "seed" in text
    assert "Records: train 428, val 56." in text


def test_the_loss_and_the_litert_models_are_explained() -> None:
    card = _card(_config({"synthetic": True}))
    assert "`loss` is the training objective: class-weighted cross-entropy + Dice." in card.text
    assert "| float32 | `model.tflite` | 130000 | 0.9101 | 0.9000 | 0.0001 / 0.0000 |" in card.text
    assert "keras.saving.load_model" in card.text and "ai_edge_litert" in card.text
    assert {"tflite", "litert"} <= set(card.data.tags) and card.data.library_name == "keras"


def test_usage_sections_follow_the_files() -> None:
    card = _card(_config({"synthetic": True}), files=["model_config.json", "saved_model/saved_model.pb"])
    assert "keras.saving.load_model" not in card.text and "ai_edge_litert" not in card.text
    assert 'load_model("hf://u/pets@v1")' in card.text and "litert" not in card.data.tags
