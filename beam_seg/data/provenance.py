"""Which data an input holds: the official Oxford-IIIT Pet files, or the synthetic sample data.

``python -m beam_seg.sample_data`` leaves a small JSON marker, :data:`SAMPLE_MARKER`, in the ``annotations/`` folder
(not at the dataset root): that folder is what every way of handing the data on carries, the extracted layout and
``annotations.tar.gz`` alike, so a copy of the folders or an upload of the two archives (``run_dataflow.sh --gcp``
uploads nothing else) keeps it. Stage 1 reads it while it locates the input and records :func:`dataset_entry` as
``stats.json``'s ``dataset``; training copies that into ``model_config.json``, and the model card reads it from
there. The marker lies outside ``images/`` and ``annotations/trimaps/``, so it is never counted as an ignored file.
No paths go into the entry: ``stats.json`` stays the same wherever the input lies.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "OFFICIAL",
    "SAMPLE_GENERATOR",
    "SAMPLE_MARKER",
    "SAMPLE_NAME",
    "ProvenanceError",
    "dataset_entry",
    "sample_marker",
]

# The marker's path inside the dataset root, and inside annotations.tar.gz (whose members start at annotations/).
SAMPLE_MARKER = "annotations/beam_seg_sample.json"
SAMPLE_GENERATOR = "python -m beam_seg.sample_data"
SAMPLE_NAME = f"synthetic sample data ({SAMPLE_GENERATOR})"
# The entry of an input without the marker: the official layout, so (as far as stage 1 can tell) the official data.
OFFICIAL: dict[str, Any] = {"name": "Oxford-IIIT Pet", "synthetic": False, "source": "official layout"}
# The marker's settings that the stats.json entry repeats (each as the sample data maker's flag spells it).
_SAMPLE_SETTINGS = ("seed", "num_images", "min_size", "max_size", "test_fraction", "faults")


class ProvenanceError(ValueError):
    """The sample-data marker exists but cannot be read as the JSON object :func:`sample_marker` writes."""


def sample_marker(**settings: Any) -> bytes:
    """The marker's bytes for a sample dataset made with ``settings`` (deterministic: sorted keys, no time)."""
    marker = {"dataset": "beam_seg synthetic sample", "generator": SAMPLE_GENERATOR, **settings}
    return (json.dumps(marker, indent=2, sort_keys=True) + "\n").encode("utf-8")


def dataset_entry(marker: bytes | None, *, where: str = SAMPLE_MARKER) -> dict[str, Any]:
    """``stats.json``'s ``dataset`` entry from the marker's bytes (``None``: no marker, the official data).

    ``name`` and ``synthetic`` say which data it is and ``source`` how stage 1 knows (the marker, or the official
    layout without one); a sample dataset's entry also repeats the settings it was made with.

    Args:
        marker: The contents of :data:`SAMPLE_MARKER`, or ``None`` when the input has none.
        where: Where the marker was read (e.g. ``gs://b/in/annotations.tar.gz:annotations/...``), for the error
            message only: the entry names no path.

    Raises:
        ProvenanceError: the marker is not a UTF-8 JSON object.
    """
    if marker is None:
        return dict(OFFICIAL)
    try:
        settings = json.loads(marker.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        settings, problem = None, f"{type(e).__name__}: {e}"
    else:
        problem = f"it holds {type(settings).__name__} {str(settings)[:60]!r}"
    if not isinstance(settings, dict):
        raise ProvenanceError(
            f"{where} is not the JSON object {SAMPLE_GENERATOR} writes ({problem}); make the sample data again, "
            f"or delete the file if this input is the official Oxford-IIIT Pet data"
        )
    kept = {key: settings[key] for key in _SAMPLE_SETTINGS if key in settings}
    return {"name": SAMPLE_NAME, "synthetic": True, "source": SAMPLE_MARKER, **kept}
