#!/usr/bin/env bash
# beam_seg pipeline orchestrator: (1) TFRecords (Beam) -> (2) training (Keras) -> (3) publish (Beam, Hub).
# With no arguments it runs everything locally on sample data it makes itself and prints where every
# output is and how to serve the demo Space. With --gcp, stages 1 and 3 run on Dataflow and stage 2 on
# this machine or on Vertex AI, everything under gs://<bucket>/<run_id>/. Run with --help for the options.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Every setting below is a flag (--lower_case) and an environment variable (UPPER_CASE); the flag wins.
INPUT="${INPUT:-}"
DOWNLOAD="${DOWNLOAD:-0}"
OUTPUT_DIR="${OUTPUT_DIR:-$REPO/outputs}"
NUM_IMAGES="${NUM_IMAGES:-500}"
RESIZE="${RESIZE:-128}"
EPOCHS="${EPOCHS:-24}"
TRAIN_ARGS="${TRAIN_ARGS:-}"
GPUS="${GPUS:-0}"
HF_USER="${HF_USER:-}"
MODEL_REPO="${MODEL_REPO:-}"
SPACE_REPO="${SPACE_REPO:-}"
SPACE_SDK="${SPACE_SDK:-gradio}"
SPACE_HARDWARE="${SPACE_HARDWARE:-auto}"
BLESS_AGAINST="${BLESS_AGAINST:-auto}"
MAX_REGRESSION="${MAX_REGRESSION:-0}"
PUBLISH_VERSION="${PUBLISH_VERSION:-}"
STAGES="${STAGES:-data,train,publish}"
# Google Cloud mode.
GCP="${GCP:-0}"
PROJECT="${PROJECT:-}"
REGION="${REGION:-}"
BUCKET="${BUCKET:-}"
RUN_ID="${RUN_ID:-}"
DRY_RUN="${DRY_RUN:-0}"
WORKER_MACHINE_TYPE="${WORKER_MACHINE_TYPE:-n1-standard-4}"
MAX_WORKERS="${MAX_WORKERS:-4}"
SDK_CONTAINER_IMAGE="${SDK_CONTAINER_IMAGE:-}"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-}"
PUBLISH_ON="${PUBLISH_ON:-dataflow}"
HF_TOKEN_SECRET="${HF_TOKEN_SECRET:-beam-seg-hf-token}"
TRAIN_ON="${TRAIN_ON:-local}"
TRAIN_IMAGE="${TRAIN_IMAGE:-}"
VERTEX_MACHINE_TYPE="${VERTEX_MACHINE_TYPE:-n1-standard-8}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-NVIDIA_TESLA_T4}"
ACCELERATOR_COUNT="${ACCELERATOR_COUNT:-1}"
VERTEX_POLL_SECONDS="${VERTEX_POLL_SECONDS:-60}"
# Fixed names (environment only).
PETS_URL="${PETS_URL:-https://thor.robots.ox.ac.uk/datasets/pets}"
PETS_ARCHIVES=(images.tar.gz annotations.tar.gz)
ARTIFACT_REPO="${ARTIFACT_REPO:-beam-seg}"
TRAIN_DOCKERFILE="$REPO/docker/train.Dockerfile"
WORKER_DOCKERFILE="$REPO/docker/worker.Dockerfile"
APPS_DIR="$REPO/apps"  # The Space templates: apps/<space_sdk>/semantic_segmentation.

usage() {
  cat <<'EOF'
Usage: ./run_dataflow.sh [options]            local: sample data -> TFRecords -> CPU training -> publish dry run
       ./run_dataflow.sh --gcp --project P --region R --bucket gs://B [options]

Data and training (both modes):
  --input DIR             PETS input: the official images.tar.gz + annotations.tar.gz, or their extracted
                          images/ and annotations/, in a local or gs:// directory (default: sample data)
  --download              fetch the two official archives from $PETS_URL (images.tar.gz, annotations.tar.gz)
                          into the run's input directory (skipped for archives already there)
  --num_images N          sample images to make when there is no --input/--download (default: 500)
  --resize S              square side of stored images/masks and of the model input (default: 128)
  --epochs N              training epochs (default: 24)
  --train_args "FLAGS"    extra flags for python -m beam_seg.train, e.g. "--base_filters 16 --batch_size 32"
  --gpus N                require N GPUs on this machine for training (checked with nvidia-smi -L) and use
                          GPUs 0..N-1 (default: 0 = whatever TensorFlow finds)
  --stages LIST           comma-separated subset of data,train,publish (default: all three)
  --output_dir DIR        local outputs (default: outputs/ in the repository); in GCP mode the run records go to
                          DIR/runs/<run_id>/ (commands.log, Vertex job spec, dry-run job records)

Publishing (real with HF_TOKEN in the environment and --hf_user or --model_repo, else a dry run):
  --hf_user USER          Hub user or organisation
  --model_repo ID         model repo (default: <hf_user>/beam-seg-pets; local-user/beam-seg-pets in a dry run)
  --space_repo ID         demo Space repo (default: <hf_user>/beam-seg-pets-demo)
  --space_sdk SDK         gradio (default: the Gradio app, LiteRT on the CPU) or static (a page that runs the
                          model in the browser; free for every account)
  --space_hardware H      hardware of a Gradio Space: auto (default: cpu-basic, or ZeroGPU when the Hub answers
                          402, as for free accounts), cpu-basic, zero-a10g or another Hub flavour
  --publish_version V     version (tag and branch) to publish (default: v<run_id> in GCP mode, else v<UTC time>)
  --bless_against B       publish only a model not worse than B on this run's test split: auto (default: the
                          version the model repo's main points to, if any), none, or REPO@REV
  --max_regression X      how much lower than the baseline's the mean IoU may be (default: 0)

Google Cloud mode:
  --gcp                   run on Google Cloud (needs gcloud with an active account or
                          GOOGLE_APPLICATION_CREDENTIALS)
  --project P             Google Cloud project (required)
  --region R              region of the Dataflow jobs, the Vertex AI job and the image (required), e.g. us-central1
  --bucket gs://B         bucket (optionally gs://B/prefix) holding every run (required)
  --run_id ID             run name (default: UTC timestamp, e.g. 20261123T010203Z); everything goes under
                          gs://B/<run_id>/{input,tfrecords,model,publish,tmp,staging,vertex}; pass the same
                          id with --stages to re-run a failed stage alone
  --dry_run               build the Dataflow jobs with Beam's --dry_run (not submitted) and only record the
                          image build, the Vertex AI job and local training; input data is still uploaded
  --worker_machine_type T Dataflow worker machine type (default: n1-standard-4)
  --max_workers N         Dataflow autoscaling cap (default: 4)
  --sdk_container_image I Dataflow SDK container of stages 1 and 3 (default: the worker image, Beam's SDK image
                          with the pinned dependencies and no TensorFlow, docker/worker.Dockerfile, built with
                          Cloud Build when missing as <region>-docker.pkg.dev/<project>/beam-seg/worker:
                          <Beam>-py<X.Y>-<dependencies hash>); given, its tag must be the installed apache-beam
                          version (e.g. apache/beam_python<X.Y>_sdk:<Beam>, whose workers pip-install the
                          dependencies at start-up)
  --service_account SA    service account e-mail for the Dataflow workers and the Vertex AI job
  --publish_on WHERE      dataflow (default) or local: where stage 3's Beam job runs. For a real publish on
                          Dataflow, HF_TOKEN is stored as a new version of a Secret Manager secret (through
                          stdin, never a flag or log line) that the workers read
  --hf_token_secret NAME  that secret's name in --project (default: beam-seg-hf-token; created if missing)
  --train_on WHERE        local (default): this machine reads and writes gs:// directly; or vertex: a
                          Vertex AI custom job in the training container (docker/train.Dockerfile)
  --train_image URI       training container for vertex (default: built with Cloud Build as
                          <region>-docker.pkg.dev/<project>/beam-seg/train:<version>-<source hash>)
  --vertex_machine_type T Vertex AI machine type (default: n1-standard-8)
  --accelerator_type A    Vertex AI accelerator (default: NVIDIA_TESLA_T4)
  --accelerator_count N   accelerators per Vertex AI replica (default: 1; 0 = CPU only)
  --vertex_poll_seconds N seconds between Vertex AI job state checks (default: 60)
  -h, --help              show this help

Every option can also be set through the environment variable of the same name in upper case
(OUTPUT_DIR=/tmp/x ./run_dataflow.sh, GCP=1 PROJECT=p ...); a flag wins over the variable.
Environment only: HF_TOKEN (never printed), GOOGLE_APPLICATION_CREDENTIALS, PETS_URL, ARTIFACT_REPO.
Exit codes: 0 ok, 2 bad options or a stage's input missing (no stats.json before training, no model_config.json
before publishing), 3 a preflight check failed, otherwise the failing stage's code.
EOF
}
die() { echo "run_dataflow.sh: $*" >&2; exit 2; }
preflight_fail() { echo "run_dataflow.sh: preflight: $*" >&2; exit 3; }
truthy() { case "$1" in 1|[Tt]rue|TRUE|[Yy]es|YES|[Oo]n|ON) return 0 ;; *) return 1 ;; esac; }
has_stage() { [[ ",$STAGES," == *",$1,"* ]]; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --input) INPUT="${2:?--input needs a value}"; shift 2 ;;
    --download) DOWNLOAD=1; shift ;;
    --output_dir) OUTPUT_DIR="${2:?--output_dir needs a value}"; shift 2 ;;
    --num_images) NUM_IMAGES="${2:?--num_images needs a value}"; shift 2 ;;
    --resize) RESIZE="${2:?--resize needs a value}"; shift 2 ;;
    --epochs) EPOCHS="${2:?--epochs needs a value}"; shift 2 ;;
    --train_args) TRAIN_ARGS="${2?--train_args needs a value}"; shift 2 ;;
    --gpus) GPUS="${2:?--gpus needs a value}"; shift 2 ;;
    --hf_user) HF_USER="${2:?--hf_user needs a value}"; shift 2 ;;
    --model_repo) MODEL_REPO="${2:?--model_repo needs a value}"; shift 2 ;;
    --space_repo) SPACE_REPO="${2:?--space_repo needs a value}"; shift 2 ;;
    --space_sdk) SPACE_SDK="${2:?--space_sdk needs a value}"; shift 2 ;;
    --bless_against) BLESS_AGAINST="${2:?--bless_against needs a value}"; shift 2 ;;
    --max_regression) MAX_REGRESSION="${2:?--max_regression needs a value}"; shift 2 ;;
    --space_hardware) SPACE_HARDWARE="${2:?--space_hardware needs a value}"; shift 2 ;;
    --publish_version) PUBLISH_VERSION="${2:?--publish_version needs a value}"; shift 2 ;;
    --stages) STAGES="${2:?--stages needs a value}"; shift 2 ;;
    --gcp) GCP=1; shift ;;
    --project) PROJECT="${2:?--project needs a value}"; shift 2 ;;
    --region) REGION="${2:?--region needs a value}"; shift 2 ;;
    --bucket) BUCKET="${2:?--bucket needs a value}"; shift 2 ;;
    --run_id) RUN_ID="${2:?--run_id needs a value}"; shift 2 ;;
    --dry_run) DRY_RUN=1; shift ;;
    --worker_machine_type) WORKER_MACHINE_TYPE="${2:?--worker_machine_type needs a value}"; shift 2 ;;
    --max_workers) MAX_WORKERS="${2:?--max_workers needs a value}"; shift 2 ;;
    --sdk_container_image) SDK_CONTAINER_IMAGE="${2:?--sdk_container_image needs a value}"; shift 2 ;;
    --service_account) SERVICE_ACCOUNT="${2:?--service_account needs a value}"; shift 2 ;;
    --publish_on) PUBLISH_ON="${2:?--publish_on needs a value}"; shift 2 ;;
    --hf_token_secret) HF_TOKEN_SECRET="${2:?--hf_token_secret needs a value}"; shift 2 ;;
    --train_on) TRAIN_ON="${2:?--train_on needs a value}"; shift 2 ;;
    --train_image) TRAIN_IMAGE="${2:?--train_image needs a value}"; shift 2 ;;
    --vertex_machine_type) VERTEX_MACHINE_TYPE="${2:?--vertex_machine_type needs a value}"; shift 2 ;;
    --accelerator_type) ACCELERATOR_TYPE="${2:?--accelerator_type needs a value}"; shift 2 ;;
    --accelerator_count) ACCELERATOR_COUNT="${2:?--accelerator_count needs a value}"; shift 2 ;;
    --vertex_poll_seconds) VERTEX_POLL_SECONDS="${2:?--vertex_poll_seconds needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

# ---------------------------------------------------------------------------------------------- options
for stage in ${STAGES//,/ }; do
  case "$stage" in data|train|publish) ;; *) die "unknown stage '$stage' in --stages (known: data,train,publish)" ;; esac
done
for pair in "--num_images:$NUM_IMAGES" "--resize:$RESIZE" "--epochs:$EPOCHS" "--gpus:$GPUS" \
            "--max_workers:$MAX_WORKERS" "--accelerator_count:$ACCELERATOR_COUNT" \
            "--vertex_poll_seconds:$VERTEX_POLL_SECONDS"; do
  [[ "${pair#*:}" =~ ^[0-9]+$ ]] || die "${pair%%:*} '${pair#*:}' must be a whole number"
done
case "$TRAIN_ON" in local|vertex) ;; *) die "--train_on '$TRAIN_ON' must be local or vertex" ;; esac
case "$PUBLISH_ON" in dataflow|local) ;; *) die "--publish_on '$PUBLISH_ON' must be dataflow or local" ;; esac
read -r -a TRAIN_EXTRA <<< "$TRAIN_ARGS"
if truthy "$GCP"; then GCP=1; else GCP=0; fi
if truthy "$DRY_RUN"; then DRY_RUN=1; else DRY_RUN=0; fi
if truthy "$DOWNLOAD"; then DOWNLOAD=1; else DOWNLOAD=0; fi
if [[ $DRY_RUN -eq 1 && $GCP -eq 0 ]]; then die "--dry_run applies to --gcp runs (the local pipeline submits nothing)"; fi
[[ $DOWNLOAD -eq 0 || -z "$INPUT" ]] || die "give --input or --download, not both"

# A real publish needs a namespace and a token; otherwise it is a dry run under a placeholder user.
PUBLISH_MODE="dry-run"
if [[ -n "$HF_USER" || -n "$MODEL_REPO" ]]; then
  if [[ -n "${HF_TOKEN:-}" ]]; then
    PUBLISH_MODE="real"
  elif [[ $GCP -eq 1 ]] && has_stage publish; then
    preflight_fail "a real publish (--hf_user/--model_repo) needs HF_TOKEN in the environment; export it or drop those flags for a dry run"
  else
    echo "run_dataflow.sh: no HF_TOKEN in the environment: the publish stage will be a dry run" >&2
  fi
fi
NAMESPACE="${HF_USER:-local-user}"
MODEL_REPO="${MODEL_REPO:-$NAMESPACE/beam-seg-pets}"
SPACE_REPO="${SPACE_REPO:-$NAMESPACE/beam-seg-pets-demo}"

# ------------------------------------------------------------------------------------- preflight (GCP)
if [[ $GCP -eq 1 ]]; then
  [[ -n "$PROJECT" ]] || preflight_fail "--project is required with --gcp"
  [[ -n "$REGION" ]] || preflight_fail "--region is required with --gcp"
  [[ -n "$BUCKET" ]] || preflight_fail "--bucket is required with --gcp"
  [[ "$BUCKET" == gs://?* ]] || preflight_fail "--bucket '$BUCKET' must start with gs://"
  BUCKET="${BUCKET%/}"
  RUN_ID="${RUN_ID:-$(date -u +%Y%m%dT%H%M%SZ)}"
  [[ "$RUN_ID" =~ ^[A-Za-z0-9]([A-Za-z0-9._-]{0,60}[A-Za-z0-9])?$ ]] \
    || die "--run_id '$RUN_ID' must be letters, digits, '.', '_' or '-' (at most 62, starting and ending alphanumeric)"
  command -v gcloud >/dev/null || preflight_fail "gcloud is not on PATH; install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
  if [[ -z "${GOOGLE_APPLICATION_CREDENTIALS:-}" ]]; then
    account="$(gcloud auth list --filter=status:ACTIVE --format='value(account)' 2>/dev/null || true)"
    [[ -n "$account" ]] || preflight_fail "no active gcloud account; run 'gcloud auth login' and 'gcloud auth application-default login', or set GOOGLE_APPLICATION_CREDENTIALS"
  fi
  bucket_root="gs://$(cut -d/ -f3 <<< "$BUCKET")"
  gcloud storage ls --project="$PROJECT" "$bucket_root" >/dev/null 2>&1 \
    || preflight_fail "bucket $bucket_root is not reachable with these credentials ('gcloud storage ls $bucket_root' failed); create it with 'gcloud storage buckets create $bucket_root --project=$PROJECT --location=$REGION'"
fi
if has_stage train && [[ "$TRAIN_ON" == local && "$GPUS" -gt 0 ]]; then
  command -v nvidia-smi >/dev/null || preflight_fail "--gpus $GPUS asked but nvidia-smi is not on PATH (no NVIDIA driver?)"
  found="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
  [[ "$found" -ge "$GPUS" ]] || preflight_fail "--gpus $GPUS asked but 'nvidia-smi -L' lists ${found} GPU(s)"
fi

# shellcheck source-path=SCRIPTDIR source=scripts/bootstrap_venv.sh
source "$REPO/scripts/bootstrap_venv.sh"
beam_seg_bootstrap "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"  # The stages run this checkout, the one Dataflow stages.

WORKER_IMAGE=""  # The image the script builds for the Dataflow workers, when it chose it.
if [[ $GCP -eq 1 ]]; then
  read -r BEAM_VERSION PY_MINOR < <(python -c 'import importlib.metadata as m, sys
print(m.version("apache-beam"), "%d.%d" % sys.version_info[:2])') || die "cannot read the installed apache-beam version"
  if [[ -z "$SDK_CONTAINER_IMAGE" ]]; then
    # The Dataflow workers' image (docker/worker.Dockerfile): the dependencies of stages 1 and 3 (setup.py's
    # install_requires, pinned, no TensorFlow) preinstalled on Beam's SDK image, so a worker starts without
    # pip-installing them; the code still comes through --setup_file, an sdist whose install then only adds
    # beam_seg itself. So the image changes only when the dependencies do, and its tag is a hash of what decides
    # them. Workers take the Beam SDK from the image: that is --sdk_location's default (Beam's stager treats
    # "container" as the same), so no --sdk_location is passed.
    deps_hash="$(cd "$REPO" && cat constraints.txt setup.py docker/worker.Dockerfile | sha256sum | cut -c1-12)"
    WORKER_IMAGE="$REGION-docker.pkg.dev/$PROJECT/$ARTIFACT_REPO/worker:$BEAM_VERSION-py$PY_MINOR-$deps_hash"
    SDK_CONTAINER_IMAGE="$WORKER_IMAGE"
  else  # Given: it must run the Beam and Python the jobs are built with.
    if [[ "$SDK_CONTAINER_IMAGE" != *@* ]]; then
      image_tag="${SDK_CONTAINER_IMAGE##*:}"
      [[ "$SDK_CONTAINER_IMAGE" == *:* && "$image_tag" != */* ]] || image_tag="(none)"
      [[ "$image_tag" == "$BEAM_VERSION" ]] \
        || preflight_fail "--sdk_container_image $SDK_CONTAINER_IMAGE has tag $image_tag but the installed apache-beam is $BEAM_VERSION; workers must run the same Beam version"
    fi
    if [[ "$SDK_CONTAINER_IMAGE" =~ beam_python([0-9]+\.[0-9]+)_sdk ]] && [[ "${BASH_REMATCH[1]}" != "$PY_MINOR" ]]; then
      preflight_fail "--sdk_container_image $SDK_CONTAINER_IMAGE is for Python ${BASH_REMATCH[1]} but this venv runs Python $PY_MINOR; workers must run the same minor version"
    fi
  fi
fi

# ------------------------------------------------------------------------------------------ layout
if [[ $GCP -eq 1 ]]; then
  RUN_ROOT="$BUCKET/$RUN_ID"
  INPUT_DIR="$RUN_ROOT/input"
  TFRECORD_DIR="$RUN_ROOT/tfrecords"
  MODEL_DIR="$RUN_ROOT/model"
  PUBLISH_DIR="$RUN_ROOT/publish"
  VERTEX_DIR="$RUN_ROOT/vertex"
  RUN_DIR="$OUTPUT_DIR/runs/$RUN_ID"
  JOB_SUFFIX="$(tr '[:upper:]' '[:lower:]' <<< "$RUN_ID" | tr '._' '--')"  # Dataflow job names: [a-z0-9-].
  PUBLISH_VERSION="${PUBLISH_VERSION:-v$RUN_ID}"
else
  INPUT_DIR="$OUTPUT_DIR/input"
  TFRECORD_DIR="$OUTPUT_DIR/tfrecords"
  MODEL_DIR="$OUTPUT_DIR/model"
  PUBLISH_DIR="$OUTPUT_DIR/publish"
  RUN_DIR="$OUTPUT_DIR"
fi
mkdir -p "$RUN_DIR"
COMMAND_LOG="$RUN_DIR/commands.log"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) run_dataflow.sh (gcp=$GCP dry_run=$DRY_RUN stages=$STAGES)" >> "$COMMAND_LOG"

# Each stage's own flags, checked before anything runs: a value only a later stage refuses (--resize 100, which
# training cannot use; a typo in --train_args; an invalid repo id) stops the run here, not after stage 1.
data_args=(--input "${INPUT:-$INPUT_DIR}" --output_dir "$TFRECORD_DIR" --resize "$RESIZE" --overwrite)
train_args=(--data_dir "$TFRECORD_DIR" --output_dir "$MODEL_DIR" --image_size "$RESIZE" --epochs "$EPOCHS")
if [[ $GCP -eq 1 ]]; then
  train_args+=(--resume)  # A re-run of the stage continues from the checkpoints in gs://.../model.
else
  train_args+=(--overwrite)
fi
train_args+=(${TRAIN_EXTRA[@]+"${TRAIN_EXTRA[@]}"})
publish_args=(--model_dir "$MODEL_DIR" --model_repo "$MODEL_REPO" --space_repo "$SPACE_REPO"
              --space_sdk "$SPACE_SDK" --app_dir "$APPS_DIR/$SPACE_SDK/semantic_segmentation"
              --output_dir "$PUBLISH_DIR" --data_dir "$TFRECORD_DIR" --bless_against "$BLESS_AGAINST"
              --max_regression "$MAX_REGRESSION")
[[ "$SPACE_HARDWARE" == auto ]] || publish_args+=(--space_hardware "$SPACE_HARDWARE")
[[ -z "$PUBLISH_VERSION" ]] || publish_args+=(--version "$PUBLISH_VERSION")
check_stage_flags() {  # $1: stage, then its flags
  python "$REPO/scripts/check_flags.py" "$@" || exit 2
}
! has_stage data || check_stage_flags tfrecord_gen "${data_args[@]}"
! has_stage train || check_stage_flags train "${train_args[@]}"
! has_stage publish || check_stage_flags publish "${publish_args[@]}"

# Every command a stage runs is echoed and appended to commands.log (none of them holds a secret).
quoted() {  # The command as one shell-quoted line (plain words stay as they are).
  local words=() arg
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then words+=("$arg"); else words+=("$(printf '%q' "$arg")"); fi
  done
  echo "${words[*]}"
}
run() { echo "+ $(quoted "$@")" >&2; quoted "$@" >> "$COMMAND_LOG"; "$@"; }
record() { echo "dry run, not run: $(quoted "$@")"; echo "# dry run, not run: $(quoted "$@")" >> "$COMMAND_LOG"; }
run_or_record() { if [[ $DRY_RUN -eq 1 ]]; then record "$@"; else run "$@"; fi; }
gcs_exists() { gcloud storage ls --project="$PROJECT" "$1" >/dev/null 2>&1; }

# A stage reads only a complete output of the stage before it: the file that stage writes last must be there.
output_complete() {  # $1: that file, local or gs://
  if [[ "$1" == gs://* ]]; then gcs_exists "$1"; else [[ -f "$1" ]]; fi
}
require_complete() {  # $1: that file, $2: the stage that writes it (data|train); exits 2 when it is missing
  ! output_complete "$1" || return 0
  local stages="" stage rerun
  for stage in data train publish; do
    if [[ "$stage" == "$2" ]] || has_stage "$stage"; then stages+="${stages:+,}$stage"; fi
  done
  rerun="--stages $stages"
  [[ $GCP -eq 0 ]] || rerun="--run_id $RUN_ID $rerun"
  echo "run_dataflow.sh: $1 does not exist: ${1%/*} is not a complete output of stage $2 (${1##*/} is written" \
       "last); run that stage first, e.g. this command with $rerun" >&2
  exit 2
}

yaml_str() { local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"; }  # A YAML double-quoted string.

# The images: built by Cloud Build into the Artifact Registry repository $ARTIFACT_REPO (created on first use) from a
# context in $RUN_DIR holding only what the Dockerfile copies; skipped when the tag exists (a tag names its inputs).
ARTIFACT_REPO_READY=0
ensure_artifact_repo() {
  [[ $ARTIFACT_REPO_READY -eq 0 ]] || return 0
  ARTIFACT_REPO_READY=1
  if [[ $DRY_RUN -eq 1 ]] || ! gcloud artifacts repositories describe "$ARTIFACT_REPO" --project="$PROJECT" \
       --location="$REGION" >/dev/null 2>&1; then
    run_or_record gcloud artifacts repositories create "$ARTIFACT_REPO" --project="$PROJECT" --location="$REGION" \
      --repository-format=docker --description="beam_seg images (Dataflow workers, training)"
  fi
}

build_image() {  # $1: name (worker|train), $2: image URI, $3: Dockerfile, $4: "NAME=VALUE ..." build args, then the
                 # context's files and directories, relative to the repository
  local name="$1" uri="$2" dockerfile="$3" build_args=() path arg
  local context="$RUN_DIR/${name}_image_context"
  read -r -a build_args <<< "$4"
  shift 4
  rm -rf "$context"  # Our own scratch directory under the run dir.
  mkdir -p "$context"
  for path in "$@"; do
    mkdir -p "$context/$(dirname "$path")"
    cp -R "$REPO/$path" "$context/$path"
  done
  cp "$dockerfile" "$context/Dockerfile"
  find "$context" -name __pycache__ -prune -exec rm -rf {} +
  if [[ $DRY_RUN -eq 0 ]] && gcloud artifacts docker images describe "$uri" --project="$PROJECT" >/dev/null 2>&1; then
    echo "==> $name image $uri already exists"
    return 0
  fi
  ensure_artifact_repo
  echo "==> building the $name image $uri with Cloud Build (context: $context)"
  if [[ ${#build_args[@]} -eq 0 ]]; then
    run_or_record gcloud builds submit "$context" --project="$PROJECT" --tag="$uri"
    return 0
  fi
  # Build arguments need a build config (--tag takes none): docker build with them, then push the tag.
  {
    echo "# Cloud Build config of the $name image (run_dataflow.sh, run $RUN_ID): docker build with its build arguments."
    echo "steps:"
    echo "  - name: gcr.io/cloud-builders/docker"
    echo "    args:"
    echo "      - build"
    for arg in "${build_args[@]}"; do echo "      - $(yaml_str "--build-arg=$arg")"; done
    echo "      - $(yaml_str "--tag=$uri")"
    echo "      - ."
    echo "images:"
    echo "  - $(yaml_str "$uri")"
  } > "$context/cloudbuild.yaml"
  run_or_record gcloud builds submit "$context" --project="$PROJECT" --config="$context/cloudbuild.yaml"
}

# The Dataflow workers' image (see WORKER_IMAGE above), built once per run when the script chose it.
WORKER_IMAGE_READY=0
ensure_worker_image() {
  [[ -n "$WORKER_IMAGE" && $WORKER_IMAGE_READY -eq 0 ]] || return 0
  WORKER_IMAGE_READY=1
  build_image worker "$WORKER_IMAGE" "$WORKER_DOCKERFILE" "PYTHON_VERSION=$PY_MINOR BEAM_VERSION=$BEAM_VERSION" \
    constraints.txt setup.py pyproject.toml beam_seg/__init__.py
}

dataflow_args() {  # Sets DATAFLOW_ARGS; $1: job name prefix.
  DATAFLOW_ARGS=(--runner=DataflowRunner "--project=$PROJECT" "--region=$REGION" "--setup_file=$REPO/setup.py"
              "--temp_location=$RUN_ROOT/tmp" "--staging_location=$RUN_ROOT/staging"
              "--machine_type=$WORKER_MACHINE_TYPE" "--max_num_workers=$MAX_WORKERS"
              "--sdk_container_image=$SDK_CONTAINER_IMAGE" "--job_name=$1-$JOB_SUFFIX")
  [[ -z "$SERVICE_ACCOUNT" ]] || DATAFLOW_ARGS+=("--service_account_email=$SERVICE_ACCOUNT")
}

# A Beam job on Dataflow: submitted and awaited, or with --dry_run built and recorded in $RUN_DIR.
run_beam_stage() {  # $1: tfrecord_gen|publish, $2: job name prefix, then the stage's flags
  local stage="$1"
  ensure_worker_image
  dataflow_args "$2"
  shift 2
  if [[ $DRY_RUN -eq 1 ]]; then
    run python "$REPO/scripts/dataflow_dry_run.py" --stage "$stage" --record "$RUN_DIR/dataflow_$stage.json" \
      -- "$@" "${DATAFLOW_ARGS[@]}"
  else
    run python -m "beam_seg.$stage" "$@" "${DATAFLOW_ARGS[@]}"
  fi
}

# ------------------------------------------------------------------------------------------ stage 1
download_archives() {  # $1: destination directory (local or gs://)
  local name url
  for name in "${PETS_ARCHIVES[@]}"; do
    url="$PETS_URL/$name"
    if [[ "$1" == gs://* ]]; then
      if gcs_exists "$1/$name"; then echo "==> $1/$name is already there"; continue; fi
      # Streamed to a temporary name, renamed once complete: a broken download never looks finished.
      echo "+ curl -fSL --retry 3 $url | gcloud storage cp - $1/$name.part" >&2
      echo "curl -fSL --retry 3 $url | gcloud storage cp --project=$PROJECT - $1/$name.part" >> "$COMMAND_LOG"
      curl -fSL --retry 3 "$url" | gcloud storage cp --project="$PROJECT" - "$1/$name.part"
      run gcloud storage mv --project="$PROJECT" "$1/$name.part" "$1/$name"
    else
      if [[ -s "$1/$name" ]]; then echo "==> $1/$name is already there"; continue; fi
      mkdir -p "$1"
      run curl -fSL --retry 3 -o "$1/$name.part" "$url"
      mv "$1/$name.part" "$1/$name"
    fi
  done
}

upload_input() {  # $1: local PETS directory; copies it to $INPUT_DIR
  if [[ -f "$1/images.tar.gz" && -f "$1/annotations.tar.gz" ]]; then
    run gcloud storage cp --project="$PROJECT" "$1/images.tar.gz" "$1/annotations.tar.gz" "$INPUT_DIR/"
  elif [[ -d "$1/images" && -d "$1/annotations" ]]; then
    run gcloud storage cp --project="$PROJECT" --recursive "$1/images" "$1/annotations" "$INPUT_DIR/"
  else
    die "--input $1 holds neither images.tar.gz + annotations.tar.gz nor images/ + annotations/"
  fi
}

resolve_input() {  # Sets INPUT to the directory stage 1 reads, fetching or making data on the way.
  if [[ $DOWNLOAD -eq 1 ]]; then
    echo "==> downloading the official archives into $INPUT_DIR"
    download_archives "$INPUT_DIR"
    INPUT="$INPUT_DIR"
  elif [[ $GCP -eq 1 && "$INPUT" != gs://* ]]; then
    if [[ -n "$INPUT" ]]; then
      echo "==> uploading $INPUT to $INPUT_DIR"
      upload_input "$INPUT"
    elif gcs_exists "$INPUT_DIR/"; then
      echo "==> reusing the input in $INPUT_DIR"
    else
      local sample="$RUN_DIR/sample_data"
      echo "==> making $NUM_IMAGES sample images (with archives) in $sample and uploading them to $INPUT_DIR"
      run python -m beam_seg.sample_data --output_dir "$sample" --num_images "$NUM_IMAGES" --archives
      upload_input "$sample"
    fi
    INPUT="$INPUT_DIR"
  elif [[ -z "$INPUT" ]]; then
    INPUT="$OUTPUT_DIR/sample_data"
    if [[ ! -f "$INPUT/annotations/list.txt" ]]; then
      echo "==> making $NUM_IMAGES sample images in $INPUT"
      run python -m beam_seg.sample_data --output_dir "$INPUT" --num_images "$NUM_IMAGES"
    else
      echo "==> reusing sample data in $INPUT"
    fi
  fi
}

if has_stage data; then
  resolve_input
  data_args=(--input "$INPUT" "${data_args[@]:2}")
  if [[ $GCP -eq 1 ]]; then
    echo "==> stage 1, TFRecords on Dataflow: $INPUT -> $TFRECORD_DIR"
    run_beam_stage tfrecord_gen beam-seg-data "${data_args[@]}"
  else
    echo "==> stage 1, TFRecords: $INPUT -> $TFRECORD_DIR"
    run python -m beam_seg.tfrecord_gen "${data_args[@]}"
  fi
fi

# ------------------------------------------------------------------------------------------ stage 2

write_vertex_spec() {  # $1: spec path, $2: image URI
  {
    echo "# Vertex AI CustomJobSpec of run $RUN_ID, stage 2 (gcloud ai custom-jobs create --config)."
    echo "workerPoolSpecs:"
    echo "  - machineSpec:"
    echo "      machineType: $(yaml_str "$VERTEX_MACHINE_TYPE")"
    if [[ "$ACCELERATOR_COUNT" -gt 0 ]]; then
      echo "      acceleratorType: $(yaml_str "$ACCELERATOR_TYPE")"
      echo "      acceleratorCount: $ACCELERATOR_COUNT"
    fi
    echo "    replicaCount: 1"
    echo "    containerSpec:"
    echo "      imageUri: $(yaml_str "$2")"
    echo "      args:"
    local arg
    for arg in "${train_args[@]}"; do echo "        - $(yaml_str "$arg")"; done
    echo "baseOutputDirectory:"
    echo "  outputUriPrefix: $(yaml_str "$VERTEX_DIR")"
    [[ -z "$SERVICE_ACCOUNT" ]] || echo "serviceAccount: $(yaml_str "$SERVICE_ACCOUNT")"
  } > "$1"
}

wait_for_vertex_job() {  # $1: job resource name
  local state="" last="" errors=0
  echo "==> waiting for $1 (logs: gcloud ai custom-jobs stream-logs $1 --region=$REGION)"
  while true; do
    if ! state="$(gcloud ai custom-jobs describe "$1" --project="$PROJECT" --region="$REGION" --format='value(state)')"; then
      errors=$((errors + 1))
      [[ $errors -lt 5 ]] || { echo "run_dataflow.sh: cannot read the state of Vertex AI job $1 (5 attempts)" >&2; return 1; }
      sleep "$VERTEX_POLL_SECONDS"
      continue
    fi
    errors=0
    [[ "$state" == "$last" ]] || echo "    $(date -u +%H:%M:%SZ) $state"
    last="$state"
    case "$state" in
      JOB_STATE_SUCCEEDED) return 0 ;;
      JOB_STATE_FAILED|JOB_STATE_CANCELLED|JOB_STATE_CANCELLING|JOB_STATE_EXPIRED|JOB_STATE_PARTIALLY_SUCCEEDED|"")
        echo "run_dataflow.sh: Vertex AI job $1 ended in ${state:-an unknown state}: see" \
             "'gcloud ai custom-jobs describe $1 --region=$REGION' and its logs" >&2
        return 1 ;;
    esac
    sleep "$VERTEX_POLL_SECONDS"
  done
}

if has_stage train; then
  # Not in a dry run: its stage 1 was only built, so no stats.json can exist yet.
  [[ $DRY_RUN -eq 1 ]] || require_complete "$TFRECORD_DIR/stats.json" data
  if [[ $GCP -eq 1 && "$TRAIN_ON" == vertex ]]; then
    if [[ -z "$TRAIN_IMAGE" ]]; then
      version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$REPO/beam_seg/__init__.py")"
      source_hash="$(cd "$REPO" && { find beam_seg -name '*.py' | LC_ALL=C sort
                                      echo setup.py pyproject.toml MANIFEST.in constraints.txt docker/train.Dockerfile
                                    } | xargs cat | sha256sum | cut -c1-12)"
      TRAIN_IMAGE="$REGION-docker.pkg.dev/$PROJECT/$ARTIFACT_REPO/train:$version-$source_hash"
      # The training container: docker/train.Dockerfile, its context the package alone.
      build_image train "$TRAIN_IMAGE" "$TRAIN_DOCKERFILE" "" \
        beam_seg setup.py pyproject.toml MANIFEST.in constraints.txt
    fi
    spec="$RUN_DIR/vertex_job.yaml"
    write_vertex_spec "$spec" "$TRAIN_IMAGE"
    run gcloud storage cp --project="$PROJECT" "$spec" "$VERTEX_DIR/vertex_job.yaml"
    create=(gcloud ai custom-jobs create --project="$PROJECT" --region="$REGION"
            --display-name="beam-seg-train-$JOB_SUFFIX" --config="$spec" --format='value(name)')
    echo "==> stage 2, training on Vertex AI ($VERTEX_MACHINE_TYPE, ${ACCELERATOR_COUNT}x $ACCELERATOR_TYPE): $TFRECORD_DIR -> $MODEL_DIR"
    previous="$(cat "$RUN_DIR/vertex_job_name" 2>/dev/null || true)"
    previous_state=""
    if [[ -n "$previous" && $DRY_RUN -eq 0 ]]; then
      previous_state="$(gcloud ai custom-jobs describe "$previous" --project="$PROJECT" --region="$REGION" \
                          --format='value(state)' 2>/dev/null || true)"
    fi
    if [[ $DRY_RUN -eq 1 ]]; then
      record "${create[@]}"
    elif [[ "$previous_state" =~ ^JOB_STATE_(QUEUED|PENDING|RUNNING)$ ]]; then
      echo "==> this run's Vertex AI job $previous is still $previous_state: waiting for it instead of submitting another"
      wait_for_vertex_job "$previous"
    else
      job="$(run "${create[@]}" | tail -n 1)"
      [[ "$job" == projects/*/customJobs/* ]] || { echo "run_dataflow.sh: Vertex AI did not return a job name (got '$job')" >&2; exit 1; }
      echo "$job" > "$RUN_DIR/vertex_job_name"
      wait_for_vertex_job "$job"
    fi
  else
    train_cmd=(python -m beam_seg.train "${train_args[@]}")
    if [[ "$GPUS" -gt 0 ]]; then
      train_cmd=(env "CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((GPUS - 1)))" "${train_cmd[@]}")
    fi
    echo "==> stage 2, training ($EPOCHS epochs) on this machine: $TFRECORD_DIR -> $MODEL_DIR"
    run_or_record "${train_cmd[@]}"
  fi
fi

# ------------------------------------------------------------------------------------------ stage 3
# Dataflow workers have no HF_TOKEN: it goes into Secret Manager (stdin only) and they read it from there.
store_token_secret() {
  local add=(gcloud secrets versions add "$HF_TOKEN_SECRET" --project="$PROJECT" --data-file=-)
  if [[ $DRY_RUN -eq 1 ]]; then
    record "${add[@]}"
    return 0
  fi
  gcloud secrets describe "$HF_TOKEN_SECRET" --project="$PROJECT" >/dev/null 2>&1 \
    || run gcloud secrets create "$HF_TOKEN_SECRET" --project="$PROJECT" --replication-policy=automatic
  echo "+ $(quoted "${add[@]}") < HF_TOKEN" >&2
  echo "$(quoted "${add[@]}") < HF_TOKEN" >> "$COMMAND_LOG"
  printf '%s' "$HF_TOKEN" | "${add[@]}" >/dev/null
}

if has_stage publish; then
  if [[ $GCP -eq 1 && $DRY_RUN -eq 1 ]] && ! output_complete "$MODEL_DIR/model_config.json"; then
    echo "==> stage 3 skipped in this dry run: no trained model in $MODEL_DIR yet (after a real stage 2," \
         "re-run with --run_id $RUN_ID --stages publish)"
  else
    [[ $DRY_RUN -eq 1 ]] || require_complete "$MODEL_DIR/model_config.json" train
    if [[ "$PUBLISH_MODE" != "real" ]]; then
      echo "==> stage 3, publish dry run (no HF_TOKEN/--hf_user): rendering the Space, listing uploads"
      run python -m beam_seg.publish "${publish_args[@]}" --dry_run
    elif [[ $GCP -eq 1 && "$PUBLISH_ON" == dataflow ]]; then
      echo "==> stage 3, publish on Dataflow: $MODEL_DIR -> $MODEL_REPO@$PUBLISH_VERSION (+ Space $SPACE_REPO)"
      store_token_secret
      run_beam_stage publish beam-seg-publish "${publish_args[@]}" \
        --hf_token_secret "projects/$PROJECT/secrets/$HF_TOKEN_SECRET/versions/latest"
    else
      echo "==> stage 3, publish: $MODEL_DIR -> $MODEL_REPO (+ Space $SPACE_REPO)"
      run_or_record python -m beam_seg.publish "${publish_args[@]}"
    fi
  fi
fi

# ------------------------------------------------------------------------------------------ summary
echo
echo "Outputs:"
if [[ $GCP -eq 1 ]]; then
  echo "  run:          $RUN_ROOT/{input,tfrecords,model,publish,tmp,staging,vertex} ($([[ $DRY_RUN -eq 1 ]] && echo "dry run" || echo "run") $RUN_ID)"
  records=()
  for name in commands.log vertex_job.yaml dataflow_tfrecord_gen.json dataflow_publish.json; do
    [[ ! -f "$RUN_DIR/$name" ]] || records+=("$name")
  done
  echo "  run records:  $RUN_DIR/  (${records[*]})"
  [[ $WORKER_IMAGE_READY -eq 0 ]] || echo "  worker image: $WORKER_IMAGE (docker/worker.Dockerfile, Dataflow's --sdk_container_image)"
  echo "  TFRecords:    $TFRECORD_DIR"
  echo "  model:        $MODEL_DIR"
  if [[ $DRY_RUN -eq 1 && "$PUBLISH_MODE" == real ]]; then
    echo "  publish:      $PUBLISH_DIR/publish_manifest.json (real publish; this dry run only built the job)"
  else
    echo "  publish:      $PUBLISH_DIR/publish_manifest.json ($PUBLISH_MODE)"
  fi
  echo
  echo "Re-run a stage of this run: $0 --gcp --project $PROJECT --region $REGION --bucket $BUCKET --run_id $RUN_ID --stages STAGE"
  if [[ $DRY_RUN -eq 0 && "$PUBLISH_MODE" == real ]] && has_stage publish; then
    echo "Demo Space: ${HF_ENDPOINT:-https://huggingface.co}/spaces/$SPACE_REPO"
  elif [[ $DRY_RUN -eq 0 ]] && has_stage publish; then
    echo "Serve the rendered Space locally: gcloud storage cp --recursive $PUBLISH_DIR/publish_preview/space ."
    echo "  then BEAM_SEG_MODEL_DIR=$MODEL_DIR $VIRTUAL_ENV/bin/python space/app.py"
  fi
  exit 0
fi
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
echo "  commands:     $COMMAND_LOG"
SPACE_PREVIEW="$PUBLISH_DIR/publish_preview/space"
if [[ -f "$SPACE_PREVIEW/app.py" && -f "$MODEL_DIR/model_config.json" ]]; then
  echo
  echo "Serve the demo Space locally (then open http://127.0.0.1:7860):"
  echo "  BEAM_SEG_MODEL_DIR=$MODEL_DIR $VIRTUAL_ENV/bin/python $SPACE_PREVIEW/app.py"
fi
