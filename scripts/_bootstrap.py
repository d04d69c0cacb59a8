"""Let the guide's ``python3 scripts/…`` commands run from a checkout with any ``python3``.

If the running Python lacks the project's packages, re-run the script with the repository's
``.venv`` (made by ``make demo`` / ``make test``); then put the repository on ``sys.path`` so the
``vlwm`` package imports without installing.
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv"


def ensure_environment(script: str, modules: tuple[str, ...] = ("numpy",)) -> None:
    """Re-exec ``script`` under ``.venv/bin/python`` when one of ``modules`` is missing here."""
    try:
        for name in modules:
            __import__(name)
    except ImportError as exc:
        venv_python = VENV / "bin" / "python"
        if venv_python.exists() and Path(sys.prefix).resolve() != VENV.resolve():
            os.execv(str(venv_python), [str(venv_python), script, *sys.argv[1:]])
        sys.exit(f"{Path(script).name}: {exc}: run `make test` (creates {VENV}) or `pip install -e .`")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
