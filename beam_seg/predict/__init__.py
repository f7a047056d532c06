"""Batch prediction: images or stage 1's TFRecords → one mask per image, with a trained model (Apache Beam).

``python -m beam_seg.predict`` (:mod:`beam_seg.predict.job`). Modules: :mod:`~beam_seg.predict.options` (flags),
:mod:`~beam_seg.predict.inputs` (what ``--input`` holds, names and their owners), :mod:`~beam_seg.predict.images`
(the bytes the model gets), :mod:`~beam_seg.predict.outputs` (masks, overlays, report lines) and
:mod:`~beam_seg.predict.pipeline` (the Beam job, with :mod:`beam_seg.inference`'s ``RunInference`` model handler).
TensorFlow runs only where the model is loaded: in the workers.
"""
