#!/usr/bin/env bash
# Download pretrained weights and PLATEAU data and set up the folder layout (training guide, Quick Start).
#
#   scripts/download_and_prepare_data.sh --all | --models | --plateau | --skip-plateau [--dest DIR]
#       [--plateau-release 2020|2022] [--plateau-url URL | --plateau-zip FILE ...]
#       [--plateau-mesh CODE ...] [--plateau-layers LAYER ...] [--retries N] ...
#
# A thin wrapper over `python -m vlwm.io.cli` (vlwm/io/cli.py); `--help` lists every option.
# --plateau fetches the pinned PLATEAU Tokyo 23-ward CityGML zip of --plateau-release (default 2020,
# the catalogue page the guide cites; --plateau-url replaces the address) and extracts only
# udx/{bldg,tran,veg,dem}, or the mesh tiles of --plateau-mesh, refusing any member (also in inner
# zips) that would escape the folder.
# Downloads resume, are verified (sha256 in pretrained/downloads.lock.json: checkpoints by structure,
# the PLATEAU zip trusted on first use) and fail within seconds without a network, saying where to
# place each file by hand (docs/downloads.md).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
exec "$PYTHON" -m vlwm.io.cli "$@"
