#!/usr/bin/env bash
# Runs the whole beam_seg test suite: ruff (lint + format), then pytest (bootstraps .venv from the pinned set on first use).
# Usage: ./run_tests.sh [pytest args...]   e.g. ./run_tests.sh -k tfrecord -x
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

# System packages the tests drive for real: Debian's Chromium for the browser test, ShellCheck for the
# shell-script lint test (tests/test_run_dataflow.py).
SYSTEM_PACKAGES=(chromium shellcheck)
ensure_system_packages() {
  local missing=()
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "run_tests.sh: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "run_tests.sh: please install ${missing[*]} (Debian: apt-get install ${SYSTEM_PACKAGES[*]}); the browser and shell lint tests need them" >&2
  fi
}

# The static Space's browser test (tests/test_static_space.py) serves the LiteRT.js npm package pinned by
# tests/static_space/package-lock.json from tests/static_space/node_modules: installed from the npm registry by
# `npm ci` when missing or older than the lockfile.
STATIC_SPACE_NPM_DIR="$REPO/tests/static_space"
ensure_static_space_runtime() {
  local installed="$STATIC_SPACE_NPM_DIR/node_modules/.package-lock.json"
  [[ -f "$installed" && ! "$STATIC_SPACE_NPM_DIR/package-lock.json" -nt "$installed" ]] && return 0
  if ! command -v npm >/dev/null; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
      echo "run_tests.sh: installing npm with apt-get" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    else
      echo "run_tests.sh: please install Node.js and npm (Debian: apt-get install npm); the static Space test needs them" >&2
      return 0
    fi
  fi
  echo "run_tests.sh: npm ci in tests/static_space (the static Space's LiteRT.js runtime)" >&2
  npm ci --prefix "$STATIC_SPACE_NPM_DIR" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
}

ensure_system_packages
ensure_static_space_runtime
# shellcheck source-path=SCRIPTDIR source=scripts/bootstrap_venv.sh
source "$REPO/scripts/bootstrap_venv.sh"
beam_seg_bootstrap "$REPO"

cd "$REPO"
# Lint and format check first (seconds), then the tests.
python -m ruff check --quiet .
python -m ruff format --check --quiet .
exec python -m pytest "$@"
