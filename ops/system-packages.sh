#!/usr/bin/env bash
# Installs the Debian packages the test suite starts for real (listed one per line in
# ops/system-packages.txt, with the command each provides) when that command is missing.
# Sourced by tests/run; needs root (CI runs as root) or passwordless sudo; runs apt-get update
# once, and only when something is missing, so a prepared machine pays nothing.
set -euo pipefail
_rotator_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_rotator_missing=()
while read -r _pkg _cmd; do
    case "$_pkg" in ""|"#"*) continue ;; esac
    command -v "$_cmd" >/dev/null 2>&1 || _rotator_missing+=("$_pkg")
done < "$_rotator_root/ops/system-packages.txt"
if [ "${#_rotator_missing[@]}" -gt 0 ]; then
    _rotator_sudo=""
    [ "$(id -u)" -eq 0 ] || _rotator_sudo="sudo -n"
    echo "rotator: installing Debian packages the suite needs: ${_rotator_missing[*]}" >&2
    $_rotator_sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $_rotator_sudo apt-get install -y -qq --no-install-recommends \
        "${_rotator_missing[@]}" >&2
fi
