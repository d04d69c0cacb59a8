"""Missing reference files skip their tests on a developer's checkout but fail them under CI
(``CI=true`` or ``--require-reference``): a CI run never passes by skipping its parity tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.shared import REPO

NEEDS_MISSING_FILE = '''
from pathlib import Path

from tests.helpers.shared import require_path


def test_needs_a_reference_file(tmp_path):
    require_path(tmp_path / "missing_fixture.pt", "reference file missing_fixture.pt")
'''


def _run_pytest(tmp_path: Path, *args: str, ci: str | None) -> subprocess.CompletedProcess:
    """pytest on one test file that needs a missing reference file, with the repository's option
    (``-p tests.conftest``) and ``CI`` set as given (None: unset)."""
    (tmp_path / "test_needs_reference.py").write_text(NEEDS_MISSING_FILE)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "-q", "-rs", "--rootdir", str(tmp_path), "-c", os.devnull, *args,
                           str(tmp_path / "test_needs_reference.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ci, args, fails", [
    (None, (), False),                         # a developer's checkout without shared/: skipped
    ("false", (), False),
    ("true", (), True),                        # CI
    (None, ("--require-reference",), True),
])
def test_missing_reference_skips_or_fails(tmp_path, ci, args, fails):
    r = _run_pytest(tmp_path, *args, ci=ci)
    out = r.stdout + r.stderr
    assert "missing_fixture.pt" in out and "shared/" in out, out
    if fails:
        assert r.returncode == 1 and "1 failed" in out, out
        assert "Reference files are required here (CI=true or --require-reference)" in out, out
    else:
        assert r.returncode == 0 and "1 skipped" in out, out
