"""beam_seg: Oxford-IIIT Pet segmentation from raw archives to a published, demo-able model.

Stages (each a ``python -m beam_seg.<stage>`` command): ``sample_data`` (synthetic PETS input),
``tfrecord_gen`` (Beam: images + trimaps → TFRecords + statistics), ``train`` (Keras U-Net →
SavedModel) and ``publish`` (Beam fan-out upload to the Hugging Face Hub + Gradio Space).
"""

__version__ = "0.1.0"
