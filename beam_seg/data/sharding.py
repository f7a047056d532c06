"""The shard writer: records grouped by shard, sorted by their key, written under a temporary name.

Shard keys and counts come from :mod:`beam_seg.data.splits`; nothing random runs on a worker, so shard bytes are
reproducible, and shards are only renamed into place once all are written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_seg.data.codec import frame_record
from beam_seg.formats import shard_name

__all__ = ["WriteShards", "write_tfrecord_file"]


def write_tfrecord_file(path: str, records: Iterable[bytes]) -> tuple[int, int]:
    """Writes records in TFRecord framing to ``path`` (local or ``gs://``); returns (count, bytes)."""
    count = size = 0
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for record in records:
            f.write(frame_record(record))
            count += 1
            size += len(record)
    return count, size


def _remove_partial(path: str) -> None:
    try:
        if FileSystems.exists(path):
            FileSystems.delete([path])
    except OSError:
        pass  # The temporary folder goes as a whole when the job fails.


class _WriteShardFn(beam.DoFn):
    """Sorts one shard's records by key and writes them to the temporary directory.

    A shard that cannot be written (a full disk, no permission) is reported as ``{"split", "name", "error"}``, which
    fails the job at its end in one line, and the partial file is removed.
    """

    def __init__(self, temp_dir: str) -> None:
        self._temp_dir = temp_dir

    def process(
        self, element: tuple[tuple[str, int], Iterable[tuple[int, str, bytes]]], num_shards: Mapping[str, int]
    ) -> Iterator[dict[str, object]]:
        (split, index), records = element
        ordered = sorted(records)  # (shard key, name, bytes): a total order, so shard bytes are reproducible.
        name = shard_name(split, index, num_shards[split])
        temp_path = FileSystems.join(self._temp_dir, name)
        try:
            count, size = write_tfrecord_file(temp_path, (record for _, _, record in ordered))
        except OSError as e:
            _remove_partial(temp_path)
            yield {"split": split, "name": name, "error": f"cannot write {temp_path}: {e}"}
            return
        beam.metrics.Metrics.counter("beam_seg", "shards_written").inc()
        yield {"split": split, "name": name, "temp_path": temp_path, "records": count, "bytes": size}


class WriteShards(beam.PTransform):
    """Writes ``(split, (shard key, name, serialized))`` records to sorted shards in ``temp_dir``.

    Outputs one dict per shard written (``split``, ``name``, ``temp_path``, ``records``, ``bytes``), or per shard
    that could not be written (``split``, ``name``, ``error``); a later step renames them into place.
    """

    def __init__(self, temp_dir: str, num_shards: beam.pvalue.AsSingleton) -> None:
        """Writes shards into ``temp_dir``.

        Args:
            temp_dir: Directory for the not-yet-final shard files.
            num_shards: Side input: dict split -> shard count.
        """
        super().__init__()
        self._temp_dir = temp_dir
        self._num_shards = num_shards

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        """``(split, (shard key, name, bytes))`` → one dict per written shard."""
        return (
            records
            | "KeyByShard"
            >> beam.Map(
                lambda kv, counts: ((kv[0], kv[1][0] % counts[kv[0]]), kv[1]), self._num_shards
            ).with_output_types(tuple[tuple[str, int], Any])  # Any: the uint64 hash overflows Beam's int coder.
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShardFiles" >> beam.ParDo(_WriteShardFn(self._temp_dir), self._num_shards)
        )
