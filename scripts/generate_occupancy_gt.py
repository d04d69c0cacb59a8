#!/usr/bin/env python3
"""The guide's ground-truth command; the same as ``vlwm gt``.

    python3 scripts/generate_occupancy_gt.py --input data/tokyo_gazebo/drone_*/ --output data/tokyo_processed/
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vlwm.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["gt", *sys.argv[1:]]))
