"""What a Dataflow worker of stages 1 and 3 installs, resolved offline (helpers of the tests, not a test module).

A worker runs ``pip install workflow.tar.gz``, the sdist Beam builds from ``--setup_file``, with no extras; the worker
image (``docker/worker.Dockerfile``) runs ``pip install -c constraints.txt .`` on a context holding ``setup.py``, also
with no extras. Both resolve the package's requirements the way pip does, by setuptools' PEP 517 metadata hook:

- :func:`project_requirements`: that hook run in a project directory (an extracted sdist, an image's build context);
  pip runs it in an isolated build environment, here it runs with this venv's setuptools, so nothing is downloaded;
- :func:`sdist_requirements`: the same for an sdist, extracted first;
- :func:`closure`: every distribution such requirements pull in, followed through the metadata of the distributions
  installed here (the pinned set of ``constraints.txt``, so the versions the workers get).
"""

from __future__ import annotations

import glob
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Distributions of training (the ``train`` extra and what only it pulls in) that no worker of stages 1 and 3 needs.
TRAINING = frozenset(
    {
        "tensorflow",
        "tensorflow-cpu",
        "tensorflow-gpu",
        "tensorflow-intel",
        "tensorflow-serving-api",
        "keras",
        "tf-keras",
        "tfx-bsl",
        "matplotlib",
    }
)

_HOOK = """
import sys
from setuptools import build_meta
build_meta.prepare_metadata_for_build_wheel(sys.argv[1])
"""


def project_requirements(project_dir: str) -> list[Requirement]:
    """The requirements ``pip install PROJECT_DIR`` (no extras) resolves, from the PEP 517 metadata hook."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [sys.executable, "-c", _HOOK, out], cwd=project_dir, check=True, capture_output=True, text=True, timeout=120
        )
        (dist_info,) = glob.glob(os.path.join(out, "*.dist-info"))
        requires = importlib.metadata.PathDistribution.at(dist_info).requires or []
    requirements = [Requirement(r) for r in requires]
    return [r for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]


def sdist_requirements(sdist: str) -> list[Requirement]:
    """The requirements ``pip install SDIST`` (no extras) resolves."""
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        (root,) = os.listdir(tmp)
        return project_requirements(os.path.join(tmp, root))


def names(requirements: Iterable[Requirement]) -> set[str]:
    """The canonical distribution names of ``requirements``."""
    return {canonicalize_name(r.name) for r in requirements}


def closure(requirements: Iterable[Requirement]) -> set[str]:
    """Every distribution ``requirements`` install, themselves included (canonical names), from installed metadata.

    Raises:
        importlib.metadata.PackageNotFoundError: a required distribution is not installed here.
    """
    extras_of: dict[str, set[str]] = {}
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        wanted = set(requirement.extras)
        if name in extras_of and wanted <= extras_of[name]:
            continue
        extras_of[name] = extras_of.get(name, set()) | wanted
        for text in importlib.metadata.distribution(name).requires or []:
            dependency = Requirement(text)
            active = ["", *sorted(extras_of[name])]  # The requirement applies without extras or with one asked for.
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for e in active):
                todo.append(dependency)
    return set(extras_of)
