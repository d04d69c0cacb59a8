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

source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
exec "$PYTHON" -m vlwm.io.cli "$@"
