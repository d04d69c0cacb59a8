#!/usr/bin/env bash
# Download pretrained weights and PLATEAU data and set up the folder layout (training guide, Quick Start).
#
#   scripts/download_and_prepare_data.sh --all | --models | --plateau | --skip-plateau [--dest DIR]
#       [--plateau-url URL | --plateau-zip FILE] [--plateau-mesh CODE ...] [--retries N] ...
#
# A thin wrapper over `python -m vlwm.io.cli` (vlwm/io/cli.py); `--help` lists every option.
# Downloads resume, are verified (sha256 in pretrained/downloads.lock.json, checkpoints by structure)
# and fail within seconds without a network, saying where to place each file by hand (docs/downloads.md).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -x "$REPO/.venv/bin/python" ]]; then
    PYTHON="$REPO/.venv/bin/python"
elif command -v python3 >/dev/null 2>&1; then
    PYTHON="$(command -v python3)"
else
    echo "download_and_prepare_data.sh: no Python found: create $REPO/.venv (see README) or install python3" >&2
    exit 1
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m vlwm.io.cli "$@"
