#!/usr/bin/env bash
# Runs the whole beam_seg test suite (bootstraps .venv from the pinned set on first use).
# Usage: ./run_tests.sh [pytest args...]   e.g. ./run_tests.sh -k tfrecord -x
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

# shellcheck source=scripts/bootstrap_venv.sh
source "$REPO/scripts/bootstrap_venv.sh"
beam_seg_bootstrap "$REPO"

cd "$REPO"
exec python -m pytest "$@"
