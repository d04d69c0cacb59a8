"""The guide's evaluation entry point: ``python eval_metric_stp3.py --py-config config/… --work-dir out/… --checkpoint …``.

A thin wrapper of :func:`vlwm.eval.cli.main` (the same as ``vlwm eval``).
"""

import sys

from vlwm.eval.cli import main

if __name__ == "__main__":
    sys.exit(main())
