#!/usr/bin/env bash
# Create or refresh the project's virtual environment at <repo>/.venv (idempotent; sourced by scripts/run).
#
# - Interpreter: $SNN_DEPLOY_PYTHON if set, else python3.11, else python3.10 (lava-nc needs >= 3.10).
# - Packages: requirements/lock.txt (every version pinned, installed with --no-deps so nothing is re-resolved),
#   then lava-nc and lava-dl with --no-deps --ignore-requires-python (requirements/lava.txt), then the SNN
#   frameworks the NIR tests compare against with --no-deps (requirements/frameworks.txt), then this
#   project in editable mode. Python 3.11's import error in lava-nc and lava-dl's heavy import chain are handled
#   at import time by snn_deploy.lava_compat; site-packages is never edited.
# - A stamp holding the hash of the interpreter and the requirement files skips all of this when nothing changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.snn-deploy-env"

say() { printf '[setup] %s\n' "$*" >&2; }

pick_python() {
    local candidate
    for candidate in ${SNN_DEPLOY_PYTHON:-} python3.11 python3.10; do
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 11)))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    say "error: need Python 3.11 (or 3.10) on PATH for lava-nc; set SNN_DEPLOY_PYTHON=/path/to/python3.11"
    return 2
}

PY="$(pick_python)"
WANT="$("$PY" -c 'import sys; print(sys.version)' | head -1) $(cat "$ROOT/requirements/lock.txt" "$ROOT/requirements/lava.txt" "$ROOT/requirements/frameworks.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$VENV/bin/python" ]]; then
    export VENV
    return 0 2>/dev/null || exit 0
fi

start=$(date +%s)
say "creating $VENV with $PY"
"$PY" -m venv --clear "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
pip_install() {  # pip install, minus the noise some machines' pip configurations print for empty local indexes
    "${PIP[@]}" install --quiet "$@" 2>&1 | { grep -v 'is neither a file nor a directory' || true; }
    return "${PIPESTATUS[0]}"
}
say "installing pinned dependencies (requirements/lock.txt)"
pip_install --no-deps -r "$ROOT/requirements/lock.txt"
say "installing lava-nc and lava-dl without their outdated pins (requirements/lava.txt)"
pip_install --no-deps --ignore-requires-python -r "$ROOT/requirements/lava.txt"
say "installing the SNN frameworks the NIR tests compare against, without their torch pins (requirements/frameworks.txt)"
pip_install --no-deps -r "$ROOT/requirements/frameworks.txt"
say "installing snn-deploy (editable)"
pip_install --no-deps --no-build-isolation -e "$ROOT"
"$VENV/bin/python" -c 'import snn_deploy, torch, lava.proc.lif.process, lava.lib.dl.netx' \
    || { say "error: the new environment cannot import its packages (see above)"; exit 2; }
echo "$WANT" > "$STAMP"
say "environment ready in $(( $(date +%s) - start )) s"
export VENV
