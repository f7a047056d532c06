"""What a Dataflow worker of stages 1 and 3 installs, and what the code imports, resolved offline (helpers of the
tests, not a test module).

A worker runs ``pip install workflow.tar.gz``, the sdist Beam builds from ``--setup_file``, with no extras; the worker
image (``docker/worker.Dockerfile``) runs ``pip install -c constraints.txt .`` on a context holding ``setup.py``, also
with no extras. Both resolve the package's requirements the way pip does, by setuptools' PEP 517 metadata hook:

- :func:`project_requirements`: that hook run in a project directory (an extracted sdist, an image's build context);
  pip runs it in an isolated build environment, here it runs with this venv's setuptools, so nothing is downloaded;
- :func:`sdist_requirements`: the same for an sdist, extracted first;
- :func:`declared_requirements`: everything a project declares, ``install_requires`` and every extra;
- :func:`closure`: every distribution such requirements pull in, followed through the metadata of the distributions
  installed here (the pinned set of ``constraints.txt``, so the versions the workers get);
- :func:`locked_pins`: the pins of ``constraints.txt``.

And what the code needs of them:

- :func:`third_party_imports`: the modules a source file imports from outside the standard library and beam_seg;
- :func:`distribution_of`: the installed distribution such a module comes from.
"""

from __future__ import annotations

import ast
import functools
import glob
import importlib.metadata
import importlib.util
import os
import re
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
        "keras",
        "tf-keras",
        "matplotlib",
    }
)

_HOOK = """
import sys
from setuptools import build_meta
build_meta.prepare_metadata_for_build_wheel(sys.argv[1])
"""


def _applies(requirement: Requirement, extras: Iterable[str]) -> bool:
    """Whether ``requirement`` is installed here without extras or with one of ``extras`` asked for."""
    marker = requirement.marker
    return marker is None or any(marker.evaluate({"extra": extra}) for extra in ("", *extras))


def _project_metadata(project_dir: str) -> tuple[list[Requirement], list[str]]:
    """Every requirement of the project in ``project_dir`` (markers unevaluated) and its extras, from the PEP 517
    metadata hook."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [sys.executable, "-c", _HOOK, out], cwd=project_dir, check=True, capture_output=True, text=True, timeout=120
        )
        (dist_info,) = glob.glob(os.path.join(out, "*.dist-info"))
        distribution = importlib.metadata.PathDistribution.at(dist_info)
        requires = distribution.requires or []
        extras = distribution.metadata.get_all("Provides-Extra") or []
    return [Requirement(r) for r in requires], extras


def project_requirements(project_dir: str) -> list[Requirement]:
    """The requirements ``pip install PROJECT_DIR`` (no extras) resolves, from the PEP 517 metadata hook."""
    requirements, _ = _project_metadata(project_dir)
    return [r for r in requirements if _applies(r, ())]


def declared_requirements(project_dir: str) -> list[Requirement]:
    """Every requirement the project in ``project_dir`` declares: ``install_requires`` and those of every extra."""
    requirements, extras = _project_metadata(project_dir)
    return [r for r in requirements if _applies(r, extras)]


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
            if _applies(dependency, sorted(extras_of[name])):
                todo.append(dependency)
    return set(extras_of)


def locked_pins(constraints: str) -> dict[str, str]:
    """The pins of the lock file ``constraints`` (``name==version`` lines): canonical name → version."""
    with open(constraints, encoding="utf-8") as f:
        pins = re.findall(r"^([\w.-]+)==(\S+)$", f.read(), flags=re.M)
    return {canonicalize_name(name): version for name, version in pins}


def third_party_imports(path: str) -> set[str]:
    """Absolute imports of ``path`` outside the standard library and beam_seg (``typing.TYPE_CHECKING`` blocks aside),
    as ``module`` or ``module.name`` for ``from module import name``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            nodes = node.orelse  # Only for type checkers, never run.
        else:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            nodes = list(ast.iter_child_nodes(node))
        for child in nodes:
            visit(child)

    with open(path, encoding="utf-8") as f:
        visit(ast.parse(f.read()))
    top = {"__future__", "beam_seg", *sys.stdlib_module_names}
    return {name for name in found if name.split(".")[0] not in top}


@functools.cache
def _owners() -> dict[str, str]:
    """Installed file → the canonical name of the distribution that installed it."""
    owners = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        owners.update((os.path.abspath(dist.locate_file(file)), name) for file in dist.files or [])
    return owners


def distribution_of(module: str) -> str | None:
    """The distribution of the first package along ``module`` that is not a namespace (``google.cloud.x``: x's), or
    ``None`` for a module no distribution installed (the repository's own, or one not installed here)."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        try:
            spec = importlib.util.find_spec(".".join(parts[:i]))
        except ModuleNotFoundError:  # A parent that is not installed.
            return None
        if spec is not None and spec.origin:
            return _owners().get(os.path.abspath(spec.origin))
    return None
