"""What several benchmarks share: a small model trained here, the machine's description, the host's stolen CPU.

Imported by the scripts of ``bench/`` (run as ``python bench/<name>.py``, so this folder is on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any

__all__ = ["host_steal_s", "machine", "train_small_model"]


def train_small_model(work: Path) -> str:
    """A model of the defaults' architecture at 128 px, trained for one short epoch on 60 sample images.

    Its speed is what the benchmarks need, not its quality. Kept in ``work/model`` and reused when already there.

    Raises:
        RuntimeError: if stage 1 or training fails.
    """
    from beam_seg.data import job as tfrecord_gen
    from beam_seg.data import sample as sample_data
    from beam_seg.train import job as train

    model_dir = work / "model"
    if (model_dir / "model_config.json").is_file():
        return str(model_dir)
    sample_data.make_sample_data(str(work / "train_raw"), num_images=60, seed=0)
    argv = ["--input", str(work / "train_raw"), "--output_dir", str(work / "tfrecords"), "--resize", "128"]
    if tfrecord_gen.run([*argv, "--direct_running_mode=in_memory", "--overwrite"]):
        raise RuntimeError("tfrecord_gen failed")
    flags = ["--epochs", "1", "--steps_per_epoch", "4", "--val_steps", "1", "--num_predictions", "1"]
    if train.run(["--data_dir", str(work / "tfrecords"), "--output_dir", str(model_dir), *flags, "--overwrite"]):
        raise RuntimeError("train failed")
    return str(model_dir)


def host_steal_s() -> float:
    """CPU seconds the hypervisor has stolen from this VM so far (``/proc/stat``; 0 where it is not available)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine() -> dict[str, Any]:
    """CPU model, core count, memory and Python version, for a result's JSON."""
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cpus": os.cpu_count(), "memory_gib": round(memory_gib, 1), "python": platform.python_version()}
