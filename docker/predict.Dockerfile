# The Dataflow worker image of python -m beam_seg.predict and python -m beam_seg.evaluate: Beam's own SDK container
# plus beam_seg's dependencies from the pinned set and TensorFlow with its CUDA libraries (tensorflow[and-cuda]), so
# the same image serves CPU workers and GPU workers (Dataflow installs the NVIDIA driver with
# --dataflow_service_options "worker_accelerator=type:nvidia-tesla-t4;count:1;install-nvidia-driver").
#
# Beam's SDK image rather than TensorFlow's: a worker's Python and apache-beam must be those of the launching
# environment, which PYTHON_VERSION and BEAM_VERSION pin here as in docker/worker.Dockerfile; TensorFlow's GPU build
# comes from its wheels. As for the stage 1 and 3 image, the code itself reaches the workers through --setup_file.
#
# Build context: constraints.txt, setup.py, pyproject.toml and beam_seg/__init__.py, with this file as its
# Dockerfile. From the repository root:
#   docker build -f docker/predict.Dockerfile --build-arg PYTHON_VERSION=3.11 --build-arg BEAM_VERSION=2.77.0 \
#       -t REGION-docker.pkg.dev/PROJECT/beam-seg/predict:2.77.0-py3.11 .
# then pass it to the job as --sdk_container_image.

# Defaults: the CI workflow's Python and apache-beam== of constraints.txt (tests/test_predict.py checks it).
ARG PYTHON_VERSION=3.11
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION}

COPY constraints.txt setup.py pyproject.toml /tmp/beam_seg_deps/
COPY beam_seg/__init__.py /tmp/beam_seg_deps/beam_seg/
# The package's install_requires and TensorFlow at the pinned versions (tensorflow== of constraints.txt; the CUDA
# wheels its and-cuda extra adds are not pinned there), then the package itself is removed again: the code comes
# from --setup_file.
RUN cd /tmp/beam_seg_deps \
    && PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 python -m pip install -c constraints.txt . 'tensorflow[and-cuda]' \
    && python -m pip uninstall --yes beam_seg \
    && python -c "import apache_beam, tensorflow as tf; print('apache-beam', apache_beam.__version__, 'tensorflow', tf.__version__)" \
    && cd / && rm -rf /tmp/beam_seg_deps

ENV TF_FORCE_GPU_ALLOW_GROWTH=true
