#!/usr/bin/env bash
# The GPU figures of the README in one table (benchmarks/gpu_table.py), in under 8 minutes on
# one GPU:   bash benchmarks/gpu.sh            (a CUDA device)
#            bash benchmarks/gpu.sh --dry-run  (CPU, tiny sizes: checks that it runs)
# PYTHON overrides the interpreter (default: python).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PYTHONPATH="$here/../src${PYTHONPATH:+:$PYTHONPATH}"
cd "$here"
exec timeout 480 "${PYTHON:-python}" gpu_table.py "$@"
