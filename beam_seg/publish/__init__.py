"""Stage 3: publish a training output directory to the Hugging Face Hub and deploy its demo Space.

``python -m beam_seg.publish`` (:mod:`beam_seg.publish.job`). Modules: :mod:`~beam_seg.publish.options` (flags),
:mod:`~beam_seg.publish.plan` (what will be published), :mod:`~beam_seg.publish.pipeline` (the Beam job),
:mod:`~beam_seg.publish.uploads` (the upload step), :mod:`~beam_seg.publish.model_card`,
:mod:`~beam_seg.publish.space` (the Space template) and :mod:`~beam_seg.publish.manifest`. No TensorFlow.
"""
