#!/usr/bin/env bash
# beam_seg pipeline orchestrator. With no arguments it runs locally on sample data it makes itself:
#   sample data -> TFRecords (Beam, local) -> short CPU training -> publish dry run
# and prints where every output is and how to serve the demo Space locally.
# Usage: ./run_dataflow.sh [options]
#   --input DIR          PETS data (official archives or extracted layout); default: make sample data
#   --output_dir DIR     where outputs go (default: ./outputs)
#   --num_images N       sample images to make when no --input is given (default: 500)
#   --resize S           square size of stored images/masks (default: 128)
#   --epochs N           training epochs (default: 16, a few minutes on a laptop CPU)
#   --hf_user USER       Hub user/org for a real publish (needs HF_TOKEN in the environment)
#   --model_repo ID      model repo (default: <hf_user>/beam-seg-pets, or local-user/... for a dry run)
#   --space_repo ID      Space repo (default: <hf_user>/beam-seg-pets-demo)
#   --stages LIST        comma-separated subset of: data,train,publish (default: all)
#   -h, --help           show this help
# Every option can also be set through the environment variable of the same name in upper case
# (e.g. OUTPUT_DIR=/tmp/x ./run_dataflow.sh). A real publish needs HF_TOKEN; without it the
# publish stage is a dry run that renders the Space under <output_dir>/publish/publish_preview.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INPUT="${INPUT:-}"
OUTPUT_DIR="${OUTPUT_DIR:-$REPO/outputs}"
NUM_IMAGES="${NUM_IMAGES:-500}"
RESIZE="${RESIZE:-128}"
EPOCHS="${EPOCHS:-16}"
HF_USER="${HF_USER:-}"
MODEL_REPO="${MODEL_REPO:-}"
SPACE_REPO="${SPACE_REPO:-}"
STAGES="${STAGES:-data,train,publish}"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "run_dataflow.sh: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --input) INPUT="${2:?--input needs a value}"; shift 2 ;;
    --output_dir) OUTPUT_DIR="${2:?--output_dir needs a value}"; shift 2 ;;
    --num_images) NUM_IMAGES="${2:?--num_images needs a value}"; shift 2 ;;
    --resize) RESIZE="${2:?--resize needs a value}"; shift 2 ;;
    --epochs) EPOCHS="${2:?--epochs needs a value}"; shift 2 ;;
    --hf_user) HF_USER="${2:?--hf_user needs a value}"; shift 2 ;;
    --model_repo) MODEL_REPO="${2:?--model_repo needs a value}"; shift 2 ;;
    --space_repo) SPACE_REPO="${2:?--space_repo needs a value}"; shift 2 ;;
    --stages) STAGES="${2:?--stages needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

for stage in ${STAGES//,/ }; do
  case "$stage" in data|train|publish) ;; *) die "unknown stage '$stage' in --stages (known: data,train,publish)" ;; esac
done

# A real publish needs a token and a namespace; otherwise it is a dry run under a placeholder user.
PUBLISH_MODE="dry-run"
if [[ -n "${HF_TOKEN:-}" && ( -n "$HF_USER" || -n "$MODEL_REPO" ) ]]; then
  PUBLISH_MODE="real"
elif [[ -n "$HF_USER" || -n "$MODEL_REPO" ]]; then
  echo "run_dataflow.sh: no HF_TOKEN in the environment: the publish stage will be a dry run" >&2
fi
NAMESPACE="${HF_USER:-local-user}"
MODEL_REPO="${MODEL_REPO:-$NAMESPACE/beam-seg-pets}"
SPACE_REPO="${SPACE_REPO:-$NAMESPACE/beam-seg-pets-demo}"

# shellcheck source-path=SCRIPTDIR source=scripts/bootstrap_venv.sh
source "$REPO/scripts/bootstrap_venv.sh"
beam_seg_bootstrap "$REPO"

TFRECORD_DIR="$OUTPUT_DIR/tfrecords"
MODEL_DIR="$OUTPUT_DIR/model"
PUBLISH_DIR="$OUTPUT_DIR/publish"
has_stage() { [[ ",$STAGES," == *",$1,"* ]]; }

if has_stage data; then
  if [[ -z "$INPUT" ]]; then
    INPUT="$OUTPUT_DIR/sample_data"
    if [[ ! -f "$INPUT/annotations/list.txt" ]]; then
      echo "==> making $NUM_IMAGES sample images in $INPUT"
      python -m beam_seg.sample_data --output_dir "$INPUT" --num_images "$NUM_IMAGES"
    else
      echo "==> reusing sample data in $INPUT"
    fi
  fi
  echo "==> stage 1, TFRecords: $INPUT -> $TFRECORD_DIR"
  python -m beam_seg.tfrecord_gen --input "$INPUT" --output_dir "$TFRECORD_DIR" --resize "$RESIZE" --overwrite
fi

if has_stage train; then
  echo "==> stage 2, training ($EPOCHS epochs): $TFRECORD_DIR -> $MODEL_DIR"
  python -m beam_seg.train --data_dir "$TFRECORD_DIR" --output_dir "$MODEL_DIR" --image_size "$RESIZE" \
    --epochs "$EPOCHS" --overwrite
fi

if has_stage publish; then
  publish_args=(--model_dir "$MODEL_DIR" --model_repo "$MODEL_REPO" --space_repo "$SPACE_REPO"
                --app_dir "$REPO/apps/gradio/semantic_segmentation" --output_dir "$PUBLISH_DIR")
  if [[ "$PUBLISH_MODE" == "real" ]]; then
    echo "==> stage 3, publish: $MODEL_DIR -> $MODEL_REPO (+ Space $SPACE_REPO)"
    python -m beam_seg.publish "${publish_args[@]}"
  else
    echo "==> stage 3, publish dry run (no HF_TOKEN/--hf_user): rendering the Space, listing uploads"
    python -m beam_seg.publish "${publish_args[@]}" --dry_run
  fi
fi

echo
echo "Outputs:"
[[ -d "$OUTPUT_DIR/sample_data" ]] && echo "  sample data:  $OUTPUT_DIR/sample_data"
if [[ -f "$TFRECORD_DIR/stats.json" ]]; then
  echo "  TFRecords:    $TFRECORD_DIR  (stats.json, errors-00000-of-00001.jsonl, schema.pbtxt)"
fi
if [[ -f "$MODEL_DIR/model_config.json" ]]; then
  echo "  model:        $MODEL_DIR  (saved_model/, metrics.json, training_curves.png, predictions.png)"
fi
if [[ -f "$PUBLISH_DIR/publish_manifest.json" ]]; then
  echo "  publish:      $PUBLISH_DIR/publish_manifest.json ($PUBLISH_MODE)"
fi
SPACE_PREVIEW="$PUBLISH_DIR/publish_preview/space"
if [[ -f "$SPACE_PREVIEW/app.py" && -f "$MODEL_DIR/model_config.json" ]]; then
  echo
  echo "Serve the demo Space locally (then open http://127.0.0.1:7860):"
  echo "  BEAM_SEG_MODEL_DIR=$MODEL_DIR $VIRTUAL_ENV/bin/python $SPACE_PREVIEW/app.py"
fi
