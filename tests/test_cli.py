"""The stages' command lines: strict flags (one line naming an unknown flag, exit 2), instant --help, Beam options."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from beam_seg import cli
from beam_seg.data.pipeline import TFRecordGenOptions
from beam_seg.publish.pipeline import PublishOptions

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("tfrecord_gen", "train", "publish", "sample_data")


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"beam_seg.{module}", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def test_all_job_options_parse_together_and_share_output_dir():
    # Beam builds one parser from every imported PipelineOptions class: the shared flags must not conflict.
    options = PipelineOptions(["--output_dir", "gs://b/out", "--input", "in", "--model_repo", "u/m"])
    assert options.view_as(TFRecordGenOptions).output_dir == "gs://b/out"
    assert options.view_as(TFRecordGenOptions).input == "in"
    assert options.view_as(PublishOptions).output_dir == "gs://b/out"
    assert options.view_as(PublishOptions).model_repo == "u/m"


def test_parse_pipeline_options_keeps_genuine_beam_and_dataflow_options():
    argv = ["--input", "x", "--runner", "DataflowRunner", "--project", "p", "--region", "r", "--experiments", "a"]
    options = cli.parse_pipeline_options([*argv, "--max_num_workers=3", "--sdk_container_image", "img:1"])
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    assert options.get_all_options()["max_num_workers"] == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--resise", "128"], "unknown flag --resise (did you mean --resize?)"),
        (["--min_mIoU=0.99"], "unknown flag --min_mIoU (did you mean --min_miou?)"),
        (["--input", "a", "b"], "unexpected argument 'b' (flags take the form --name value)"),
        (["--resize", "abc"], "argument --resize: invalid int value: 'abc'"),
        (["--runer", "DataflowRunner"], "unknown flag --runer (did you mean --runner?)"),
    ],
)
def test_parse_pipeline_options_refuses_what_nobody_knows(argv, message):
    with pytest.raises(cli.UsageError) as e:
        cli.parse_pipeline_options(argv)
    assert str(e.value) == message


def test_strict_argument_parser_errors_are_one_line_with_a_suggestion():
    parser = cli.StrictArgumentParser(prog="p")
    parser.add_argument("--epochs", type=int)
    with pytest.raises(cli.UsageError, match=r"^unknown flag --epoch \(did you mean --epochs\?\)$"):
        parser.parse_args(["--epoch", "3"])  # No abbreviations.
    with pytest.raises(cli.UsageError, match="invalid int value"):
        parser.parse_args(["--epochs", "x"])


@pytest.mark.parametrize(
    ("module", "args", "line"),
    [
        ("tfrecord_gen", ["--input", "x", "--output_dir", "y", "--resise", "128"], "unknown flag --resise"),
        ("publish", ["--model_dir", "m", "--model_repo", "u/m", "--min_mIoU", "0.99"], "unknown flag --min_mIoU"),
        ("train", ["--data_dir", "d", "--output_dir", "o", "--epoch", "3"], "unknown flag --epoch"),
        ("sample_data", ["--output_dir", "o", "--num_image", "3"], "unknown flag --num_image"),
        ("sample_data", ["--output_dir", "o", "--test_fraction", "1.5"], "--test_fraction 1.5 must be between"),
        ("sample_data", ["--output_dir", "o", "--min_size", "300", "--max_size", "200"], "--min_size 300 and"),
        ("train", ["--data_dir", "d", "--output_dir", "o", "--image_size", "100"], "--image_size 100"),
    ],
)
def test_every_stage_refuses_bad_flags_with_one_line_and_exit_2(module, args, line, tmp_path):
    result = _cli(module, *[str(tmp_path / a) if a in ("o", "y", "d") else a for a in args])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and line in lines[0], result.stderr
    assert lines[0].startswith(f"python -m beam_seg.{module}: ")
    assert not os.listdir(tmp_path)  # Nothing was written.


@pytest.mark.parametrize("module", STAGES)
def test_help_answers_at_once_without_importing_beam_or_tensorflow(module):
    code = (
        "import sys, runpy; sys.argv = ['x', '--help']\n"
        f"try: runpy.run_module('beam_seg.{module}', run_name='__main__')\n"
        "except SystemExit as e: assert not e.code, e.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('apache_beam', 'tensorflow', 'keras'))\n"
        "assert not heavy, heavy[:5]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--output_dir" in result.stdout


def test_local_runners_are_beams_own():
    from apache_beam.options.pipeline_options import StandardOptions

    assert all(cli.is_local_runner(r) for r in StandardOptions.LOCAL_RUNNERS)
    assert cli.is_local_runner("apache_beam.runners.direct.DirectRunner") and not cli.is_local_runner("DataflowRunner")
