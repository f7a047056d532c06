# Stage 2's training container (Vertex AI custom jobs): TensorFlow's GPU image + beam_seg[train] from the pinned set.
# run_dataflow.sh --gcp --train_on vertex builds it with Cloud Build (gcloud builds submit --tag ...) from a
# context holding only the package (beam_seg/, setup.py, pyproject.toml, MANIFEST.in, constraints.txt) and
# this file as its Dockerfile. The same by hand, from the repository root:
#   docker build -f docker/train.Dockerfile -t beam-seg-train .
# Arguments after the image are beam_seg.train's flags (--data_dir gs://... --output_dir gs://... ...).

# Keep in step with tensorflow== in constraints.txt (tests/test_run_dataflow.py checks it).
ARG TF_VERSION=2.21.0
FROM tensorflow/tensorflow:${TF_VERSION}-gpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /opt/beam_seg
COPY constraints.txt setup.py pyproject.toml MANIFEST.in ./
COPY beam_seg ./beam_seg
# beam_seg with its train extra (TensorFlow, Keras, matplotlib); the constraints pin tensorflow to the base image's
# version, so pip keeps the image's CUDA-enabled build.
RUN python -m pip install -c constraints.txt '.[train]' \
    && python -c "import beam_seg, tensorflow as tf; print('beam_seg', beam_seg.__version__, 'tensorflow', tf.__version__)"

ENTRYPOINT ["python", "-m", "beam_seg.train"]
