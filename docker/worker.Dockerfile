# The Dataflow worker image of stages 1 and 3: Beam's own SDK container plus beam_seg's dependencies from the pinned
# set, and no TensorFlow. run_dataflow.sh --gcp builds it with Cloud Build when its tag is missing and passes it to
# both Beam jobs as --sdk_container_image (an explicit --sdk_container_image wins).
#
# The image holds the dependencies, --setup_file brings the code: the image has the install_requires of setup.py
# (what stages 1 and 3 import, at the versions of constraints.txt), so a worker starts without pip-installing them;
# the package itself still reaches every worker as the sdist Beam stages from --setup_file ./setup.py, whose pip
# install finds its requirements satisfied and takes seconds. So a code change needs no new image: run_dataflow.sh
# tags it <region>-docker.pkg.dev/<project>/beam-seg/worker:<Beam>-py<X.Y>-<hash of constraints.txt, setup.py and
# this file> and rebuilds only when that tag is missing.
#
# Build context: constraints.txt, setup.py, pyproject.toml and beam_seg/__init__.py (setup.py reads the version
# there), with this file as its Dockerfile. PYTHON_VERSION and BEAM_VERSION are build arguments: run_dataflow.sh
# passes the launching venv's Python and its installed apache-beam, which the workers must match. By hand, from the
# repository root:
#   docker build -f docker/worker.Dockerfile --build-arg PYTHON_VERSION=3.11 --build-arg BEAM_VERSION=2.77.0 \
#       -t beam-seg-worker .

# Defaults: the CI workflow's Python and apache-beam== of constraints.txt (tests/test_run_dataflow.py checks it).
ARG PYTHON_VERSION=3.11
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION}

COPY constraints.txt setup.py pyproject.toml /tmp/beam_seg_deps/
COPY beam_seg/__init__.py /tmp/beam_seg_deps/beam_seg/
# The package's install_requires at the pinned versions (no extras, so no TensorFlow), then the package itself is
# removed again: here it is an empty shell, and the code comes from --setup_file.
RUN cd /tmp/beam_seg_deps \
    && PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 python -m pip install -c constraints.txt . \
    && python -m pip uninstall --yes beam_seg \
    && python -c "import apache_beam, google_crc32c, huggingface_hub, PIL, tensorflow_metadata; print('apache-beam', apache_beam.__version__)" \
    && python -c "import importlib.util as u, sys; sys.exit('TensorFlow must not be in the worker image' if u.find_spec('tensorflow') else 0)" \
    && cd / && rm -rf /tmp/beam_seg_deps
