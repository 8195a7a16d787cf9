#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv and installs Rotator with
# every extra the demo, the tests and the benchmarks need. Sourced by tests/run and ops/demo/run;
# needs nothing but python3 (3.11+) with venv and pip. Re-installs only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ROTATOR_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Rotator needs Python 3.11 or newer")'
stamp="$VENV/.rotator-installed"
want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "rotator: preparing $VENV (first run installs Airflow and friends, about a minute)" >&2
    "$PY" -m venv "$VENV"
    log="$VENV/install.log"
    if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
           "$VENV/bin/python" -m pip install --disable-pip-version-check \
               -e "$ROOT[airflow,test,bench]"; } > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "rotator: installing into $VENV failed; full log: $log" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
