"""The shared reference data beside the repository (``<repo>/../shared``) and what a missing file means.

Outside CI a missing reference file skips the tests that need it (a developer's checkout may lack
``shared/``).  Under CI — environment variable ``CI=true`` (or ``1``/``yes``) or the pytest option
``--require-reference`` (defined in ``tests/conftest.py``) — it fails them instead, so a CI run never
passes by silently skipping its reference-parity tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "reference" / "occworld"
PLATEAU_DIR = SHARED / "data" / "plateau"

#: Set by ``tests/conftest.py`` from the ``--require-reference`` option (pytest_configure).
REQUIRE_OPTION = False


def reference_required() -> bool:
    """True when missing reference files must fail: ``CI`` is set true, or ``--require-reference``."""
    return REQUIRE_OPTION or os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing_reference(path: Path, what: str) -> None:
    """Skip the running test because ``path`` (``what``) is missing — or fail it under CI."""
    message = (f"{what} not found at {path}: the shared/ reference folder must sit beside the repository "
               f"({SHARED})")
    if reference_required():
        pytest.fail(f"{message}.  Reference files are required here (CI=true or --require-reference); "
                    "provide shared/ or run without CI=true to skip these tests.", pytrace=False)
    pytest.skip(message)


def require_path(path: Path, what: str, *, directory: bool = False) -> Path:
    """``path`` if it exists (a file, or a folder with ``directory=True``); else skip / fail as above."""
    ok = path.is_dir() if directory else path.is_file()
    if not ok:
        missing_reference(path, what)
    return path
