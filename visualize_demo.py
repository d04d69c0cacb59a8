"""The guide's visualisation entry point: ``python visualize_demo.py --py-config … --work-dir … --output-dir visualizations/``.

A thin wrapper of :func:`vlwm.viz.forecast_run.main`.
"""

import sys

from vlwm.viz.forecast_run import main

if __name__ == "__main__":
    sys.exit(main())
