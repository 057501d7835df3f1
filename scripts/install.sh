#!/bin/sh
# Install mnv2deploy with the CPU build of torch: the one install recipe (Makefile's setup and docs/ci.md use it).
#
#   PYTHON=.venv/bin/python sh scripts/install.sh [EXTRA]     (EXTRA: dev by default; all, onnx, tflite, ...)
#
# Why torch first, from its CPU wheel index: on PyPI the Linux torch wheel is the CUDA build (GBs of nvidia-*),
# and `pip install -e .` alone would resolve that. The pin lives in pyproject.toml; the index answers first, and
# where only PyPI is reachable (a mirror whose torch is the CPU wheel) pip takes torch from there. One line says
# which source was used, and whether the torch that ended up installed is a CUDA build.
set -eu
PY=${PYTHON:-python3}
EXTRA=${1:-dev}
HERE=$(cd "$(dirname "$0")/.." && pwd)
CPU_INDEX=${MNV2DEPLOY_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
TORCH=$(sed -n 's/^ *"\(torch==[0-9.]*\)",*$/\1/p' "$HERE/pyproject.toml" | head -n 1)
[ -n "$TORCH" ] || { echo "install.sh: no torch==X pin in pyproject.toml" >&2; exit 2; }

# does the CPU index answer? (10 s; a machine without internet must not wait for pip's retries)
if "$PY" - "$CPU_INDEX/torch/" <<'PYEOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=10).close()
PYEOF
then
    if "$PY" -m pip install --quiet --retries 1 --index-url "$CPU_INDEX" "$TORCH"; then
        SOURCE="the CPU wheel index $CPU_INDEX"
    else
        "$PY" -m pip install --quiet "$TORCH"
        SOURCE="the configured package index (the CPU wheel index had no $TORCH for this Python)"
    fi
else
    "$PY" -m pip install --quiet "$TORCH"
    SOURCE="the configured package index (the CPU wheel index did not answer)"
fi
CUDA=$("$PY" -c "import torch; print(torch.version.cuda or '')" 2>/dev/null || echo "?")
if [ -z "$CUDA" ]; then
    echo "install.sh: $TORCH (CPU build) from $SOURCE"
else
    echo "install.sh: $TORCH from $SOURCE is a CUDA $CUDA build; for the CPU build reach $CPU_INDEX (or set MNV2DEPLOY_TORCH_INDEX)"
fi
# the pin is already met (2.13.0+cpu satisfies torch==2.13.0), so this cannot swap torch for another build
"$PY" -m pip install --quiet -e "$HERE[$EXTRA]"
