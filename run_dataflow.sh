#!/usr/bin/env bash
# beam_seg pipeline orchestrator. With no arguments it runs locally on sample data it makes itself:
#   sample data -> TFRecords (Beam DirectRunner) -> ... and prints where every output is.
# Usage: ./run_dataflow.sh [options]
#   --input DIR          PETS data (official archives or extracted layout); default: make sample data
#   --output_dir DIR     where outputs go (default: ./outputs)
#   --num_images N       sample images to make when no --input is given (default: 500)
#   --resize S           square size of stored images/masks (default: 128)
#   --stages LIST        comma-separated subset of: data (default: data)
#   -h, --help           show this help
# Every option can also be set through the environment variable of the same name in upper case
# (e.g. OUTPUT_DIR=/tmp/x ./run_dataflow.sh).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INPUT="${INPUT:-}"
OUTPUT_DIR="${OUTPUT_DIR:-$REPO/outputs}"
NUM_IMAGES="${NUM_IMAGES:-500}"
RESIZE="${RESIZE:-128}"
STAGES="${STAGES:-data}"

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "run_dataflow.sh: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --input) INPUT="${2:?--input needs a value}"; shift 2 ;;
    --output_dir) OUTPUT_DIR="${2:?--output_dir needs a value}"; shift 2 ;;
    --num_images) NUM_IMAGES="${2:?--num_images needs a value}"; shift 2 ;;
    --resize) RESIZE="${2:?--resize needs a value}"; shift 2 ;;
    --stages) STAGES="${2:?--stages needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

for stage in ${STAGES//,/ }; do
  case "$stage" in data) ;; *) die "unknown stage '$stage' in --stages (known: data)" ;; esac
done

# shellcheck source-path=SCRIPTDIR source=scripts/bootstrap_venv.sh
source "$REPO/scripts/bootstrap_venv.sh"
beam_seg_bootstrap "$REPO"

TFRECORD_DIR="$OUTPUT_DIR/tfrecords"
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
  echo "==> TFRecords: $INPUT -> $TFRECORD_DIR"
  python -m beam_seg.tfrecord_gen --input "$INPUT" --output_dir "$TFRECORD_DIR" --resize "$RESIZE" --overwrite
fi

echo
echo "Outputs:"
[[ -d "$OUTPUT_DIR/sample_data" ]] && echo "  sample data:  $OUTPUT_DIR/sample_data"
if [[ -f "$TFRECORD_DIR/stats.json" ]]; then
  echo "  TFRecords:    $TFRECORD_DIR  (statistics: $TFRECORD_DIR/stats.json, dead letters: $TFRECORD_DIR/errors-00000-of-00001.jsonl)"
fi
