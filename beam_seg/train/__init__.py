"""Stage 2: a Keras U-Net trained on the TFRecords, evaluated, exported as SavedModel, Keras, LiteRT (TensorFlow here).

``python -m beam_seg.train`` (:mod:`beam_seg.train.job`). Modules: :mod:`~beam_seg.train.config` (flags),
:mod:`~beam_seg.train.dataset` (tf.data input), :mod:`~beam_seg.train.models`, :mod:`~beam_seg.train.metrics`
(losses and metrics), :mod:`~beam_seg.train.callbacks`, :mod:`~beam_seg.train.trainer` (the training run),
:mod:`~beam_seg.train.reports` (pictures), :mod:`~beam_seg.train.export` (SavedModel, ``model.keras``,
``model_config.json``), :mod:`~beam_seg.train.litert` (the LiteRT models) and :mod:`~beam_seg.train.litert_eval`
(their metrics, by the LiteRT interpreter). TensorFlow is imported on first use.
"""
