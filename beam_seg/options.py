"""Pipeline options shared by more than one beam_seg Beam job.

Beam parses every ``PipelineOptions`` subclass that has been imported with one parser, so a flag can be
defined only once across the project: a second definition makes every job fail with "conflicting option
string". Flags used by several jobs live here, and each job reads them with ``view_as`` and explains what
it does with them in its own ``--help``.
"""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

__all__ = ["OutputOptions"]


class OutputOptions(PipelineOptions):
    """``--output_dir``: where a job writes its results (what exactly is in each job's ``--help``)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--output_dir", help="Output directory, local or gs:// (see the job's --help).")
