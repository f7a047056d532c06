"""Every dependency setup.py declares is used, and constraints.txt pins nothing that they do not pull in.

A declared dependency that nothing uses still costs every install its download and its place in the resolution
(a Dataflow worker installs ``install_requires``, the training image the ``train`` extra); a pin that no declared
requirement reaches makes the lock file describe an environment nobody installs. Both are checked offline and in
seconds:

- what setup.py declares (``install_requires`` and every extra) comes from setuptools' PEP 517 metadata hook, as pip
  sees it (``tests/worker_deps.py``);
- a dependency is used when a module of the repository imports one of its modules: every absolute import of every
  ``.py`` file under :data:`SOURCE_DIRS`, read with :mod:`ast` (not imported), is traced to the installed distribution
  it comes from. The few dependencies that are run rather than imported are listed in :data:`NOT_IMPORTED`, each
  with the place that runs it, which must exist;
- what the declared requirements pull in is followed through the metadata of the installed distributions (the
  pinned set, extras and environment markers evaluated for this interpreter).
"""

from __future__ import annotations

import functools
import glob
import os
import re
from typing import NamedTuple

import pytest
import worker_deps
from conftest import REPO_ROOT
from packaging.requirements import Requirement

# Where the repository's Python code lives: the package, the Space templates, the tests, the benchmarks, the scripts.
SOURCE_DIRS = ("beam_seg", "apps", "tests", "bench", "scripts")


class Use(NamedTuple):
    """Where a dependency that no module imports is used: a line of ``path`` matching ``pattern``."""

    path: str
    pattern: str
    how: str


# Declared dependencies that no module imports, and what uses them instead.
NOT_IMPORTED = {
    "ruff": Use("run_tests.sh", r"^python -m ruff check ", "run as a command: the lint and format check"),
    "pytest-timeout": Use(
        "pyproject.toml", r"^timeout = \d+$", "a pytest plugin: the per-test time limit of [tool.pytest.ini_options]"
    ),
}


@pytest.fixture(scope="module")
def declared() -> list[Requirement]:
    """Every requirement of setup.py: ``install_requires`` and those of every extra."""
    return worker_deps.declared_requirements(REPO_ROOT)


def source_files() -> list[str]:
    """Every ``.py`` file of :data:`SOURCE_DIRS` (npm's ``node_modules`` aside)."""
    return sorted(
        path
        for directory in SOURCE_DIRS
        for path in glob.glob(os.path.join(REPO_ROOT, directory, "**", "*.py"), recursive=True)
        if "node_modules" not in path.split(os.sep)
    )


@functools.cache
def imported_distributions() -> dict[str, str]:
    """Each installed distribution that a source file imports from → one such import, as ``file: module``."""
    found: dict[str, str] = {}
    for path in source_files():
        for module in sorted(worker_deps.third_party_imports(path)):
            distribution = worker_deps.distribution_of(module)
            if distribution is not None:
                found.setdefault(distribution, f"{os.path.relpath(path, REPO_ROOT)}: {module}")
    return found


def is_used(use: Use) -> bool:
    """Whether a line of ``use.path`` matches ``use.pattern``."""
    with open(os.path.join(REPO_ROOT, use.path), encoding="utf-8") as f:
        return re.search(use.pattern, f.read(), flags=re.M) is not None


def test_every_declared_dependency_is_imported_or_run_somewhere(declared):
    names = worker_deps.names(declared)
    assert {"apache-beam", "tensorflow", "gradio", "pytest", "ruff"} <= names  # Every extra was read.
    assert len(source_files()) > 50
    assert not set(NOT_IMPORTED) - names, f"NOT_IMPORTED lists what setup.py no longer declares: {NOT_IMPORTED}"
    imported = imported_distributions()
    unused = sorted(names - set(imported) - set(NOT_IMPORTED))
    assert not unused, (
        f"setup.py declares {unused}, which no module under {', '.join(SOURCE_DIRS)} imports: drop them (and the pins "
        "only they need from constraints.txt), or list them in NOT_IMPORTED with the place that runs them"
    )
    not_run = {name: use for name, use in NOT_IMPORTED.items() if name not in imported and not is_used(use)}
    assert not not_run, f"nothing uses these any more (no line of the file matches): {not_run}"


def test_every_pin_of_constraints_txt_is_declared_or_pulled_in_by_a_declared_dependency(declared):
    pins = worker_deps.locked_pins(os.path.join(REPO_ROOT, "constraints.txt"))
    assert {"apache-beam", "tensorflow", "pytest"} <= set(pins)
    orphans = sorted(set(pins) - worker_deps.closure(declared))
    assert not orphans, f"constraints.txt pins {orphans}, which no requirement of setup.py pulls in: drop the pins"
