#!/usr/bin/env bash
# The Triton server for the triton tests: its own virtual environment (nvidia-pytriton pins numpy < 2), made from
# the system python3 because the Python-backend stub in the wheel links the system libpython.
# Usage: bash tools/make_triton_venv.sh [DIR]   (default .triton-venv; the tests read EDGEDET_TRITON_VENV)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-.triton-venv}"
if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import pytriton, onnxruntime" 2>/dev/null; then
    exit 0
fi
/usr/bin/python3 -m venv "$dir"
"$dir/bin/pip" install -q "nvidia-pytriton==0.7.0" "onnxruntime>=1.17"
