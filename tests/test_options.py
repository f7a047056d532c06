"""Every Beam job's options must parse together: Beam builds one parser from all imported PipelineOptions."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from beam_seg import publish, tfrecord_gen
from beam_seg.options import OutputOptions


def test_all_job_options_parse_together_and_share_output_dir():
    options = PipelineOptions(["--output_dir", "gs://b/out", "--input", "in", "--model_repo", "u/m"])
    assert options.view_as(OutputOptions).output_dir == "gs://b/out"
    assert options.view_as(tfrecord_gen.TFRecordGenOptions).input == "in"
    assert options.view_as(publish.PublishOptions).model_repo == "u/m"
