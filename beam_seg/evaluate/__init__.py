"""Evaluation: a split's TFRecords scored by a candidate model and, optionally, a baseline (Apache Beam).

``python -m beam_seg.evaluate`` and :func:`beam_seg.evaluate.job.run_evaluation` (:mod:`beam_seg.evaluate.job`).
Modules: :mod:`~beam_seg.evaluate.options` (flags), :mod:`~beam_seg.evaluate.scoring` (one record against one mask,
as training scores it), :mod:`~beam_seg.evaluate.report` (``eval_report.json`` and its picture) and
:mod:`~beam_seg.evaluate.pipeline` (the Beam job, with :mod:`beam_seg.inference`'s ``RunInference`` model handler).
TensorFlow runs only where the models are loaded: in the workers.
"""
