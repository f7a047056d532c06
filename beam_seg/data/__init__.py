"""Stage 1: Oxford-IIIT Pet images + trimaps → sharded TFRecords, a dead-letter file and statistics (Apache Beam).

``python -m beam_seg.tfrecord_gen`` (:mod:`beam_seg.data.job`). Modules: :mod:`~beam_seg.data.options` (flags),
:mod:`~beam_seg.data.sources` (finding and reading the input), :mod:`~beam_seg.data.lists` (split lists),
:mod:`~beam_seg.data.imaging` (decode, validate, convert, resize), :mod:`~beam_seg.data.codec` (the record format),
:mod:`~beam_seg.data.stats` (statistics), :mod:`~beam_seg.data.splits` (splits and shard keys),
:mod:`~beam_seg.data.examples` (one name's files → a record: the heavy step, without Beam, for the process pool),
:mod:`~beam_seg.data.report` (the report ``CombineFn``), :mod:`~beam_seg.data.sharding` (the shard writer),
:mod:`~beam_seg.data.pipeline` (the Beam job), :mod:`~beam_seg.data.sample` (synthetic input) and
:mod:`~beam_seg.data.provenance` (which data an input is: sample data by its marker, else official). No TensorFlow.
"""
