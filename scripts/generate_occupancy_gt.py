#!/usr/bin/env python3
"""The guide's ground-truth command; the same as ``vlwm gt``.

    python3 scripts/generate_occupancy_gt.py --input data/tokyo_gazebo/drone_*/ --output data/tokyo_processed/
"""

import sys

from _bootstrap import ensure_environment

ensure_environment(__file__, ("numpy", "numba", "embreex"))

from vlwm.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["gt", *sys.argv[1:]]))
