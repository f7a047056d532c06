#!/usr/bin/env bash
# Sourced by run_tests.sh and run_dataflow.sh: activates a virtualenv with the pinned set installed.
# With a virtualenv already active it is used as is (after checking the pins); otherwise .venv in the
# repo root is created on first use and reused afterwards. Re-installs when the lock file changes.

beam_seg_bootstrap() {
  local repo="$1" python="${PYTHON:-python3}" venv stamp want
  if [[ -n "${VIRTUAL_ENV:-}" ]]; then
    venv="$VIRTUAL_ENV"
  else
    venv="$repo/.venv"
    if [[ ! -x "$venv/bin/python" ]]; then
      echo "bootstrap: creating $venv with $($python --version 2>&1)" >&2
      "$python" -m venv "$venv"
    fi
    # shellcheck disable=SC1091
    source "$venv/bin/activate"
  fi
  stamp="$venv/.beam_seg-installed"
  want="$(cat "$repo/constraints.txt" "$repo/setup.py" | sha256sum | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "bootstrap: installing beam_seg and its pinned dependencies into $venv (first run takes a few minutes)" >&2
    python -m pip install --quiet --upgrade pip setuptools wheel
    # Every extra: train (TensorFlow: stage 2, the loader), app (the Space template), test. Dataflow workers of
    # stages 1 and 3 get the package without extras (setup.py).
    python -m pip install --quiet -c "$repo/constraints.txt" -e "${repo}[train,app,test]"
    echo "$want" > "$stamp"
  fi
}
