"""The training guide's entry point: ``python train.py --py-config config/… --work-dir out/…``.

A thin wrapper of :func:`vlwm.train.cli.main` (the same as ``vlwm train``); works under ``torchrun``.
"""

import sys

from vlwm.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
