"""``MANIFEST.json``: every file of a benchmark build with its sha256, and what made it.

The manifest is deterministic: files sorted by their POSIX path relative to the benchmark root,
JSON with sorted keys, and nothing that depends on when or where the build ran (no timestamps,
no absolute paths, no host names).  Two builds of the same preset with the same software version
therefore give byte-identical manifests; :func:`verify` re-hashes a folder against its manifest.

Layout::

    {"benchmark": "vlwm-tokyo-v1", "preset": {...the Preset...},
     "generator": {"vlwm": "0.1.0", "numpy": ..., "python": "3.11", ...},
     "files": {"scenes/proc-centre-11.npz": {"sha256": "...", "bytes": 123}, ...}}
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlwm.benchmark.layout import MANIFEST_FILE, RESULTS_DIR

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def generator_versions() -> dict[str, str]:
    """Versions of the software that shapes the bytes (python minor version, vlwm, numpy, scipy, torch)."""
    import numpy
    import scipy
    import torch

    from vlwm import __version__

    return {"vlwm": __version__, "numpy": numpy.__version__, "scipy": scipy.__version__,
            "torch": torch.__version__.split("+")[0], "python": ".".join(platform.python_version_tuple()[:2])}


def list_files(root: Path) -> list[str]:
    """Every regular file under ``root`` as sorted POSIX relative paths, but the manifest and the
    ``results/`` folder (where ``vlwm benchmark eval`` writes by default)."""
    root = Path(root)
    rels = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return sorted(r for r in rels if r != MANIFEST_FILE and not r.startswith(RESULTS_DIR + "/"))


def write_manifest(root: Path, benchmark: str, preset: dict[str, Any], parameters: dict[str, Any]) -> Path:
    """Hash every file under ``root`` into ``root/MANIFEST.json``; returns its path."""
    root = Path(root)
    files = {rel: {"sha256": sha256_file(root / rel), "bytes": (root / rel).stat().st_size} for rel in list_files(root)}
    manifest = {"benchmark": benchmark, "preset": preset, "parameters": parameters,
                "generator": generator_versions(), "files": files}
    path = root / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of a benchmark folder (an error naming the folder when there is none)."""
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {root} is not a finished benchmark build "
                                f"(run `vlwm benchmark build --out {root}`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); rebuild the benchmark") from exc


@dataclass
class VerifyReport:
    """What :func:`verify` found."""

    checked: int = 0
    """Files whose hash was compared."""
    missing: list[str] = field(default_factory=list)
    """Files in the manifest but not on disk."""
    modified: list[str] = field(default_factory=list)
    """Files whose sha256 differs from the manifest's."""
    extra: list[str] = field(default_factory=list)
    """Files on disk the manifest does not list."""
    versions: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Generator versions that differ: name -> (manifest, this software); a note, not a failure."""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.modified or self.extra)

    def summary(self, limit: int = 20) -> str:
        lines = [f"verify: {self.checked} files checked, {len(self.modified)} modified, {len(self.missing)} missing, "
                 f"{len(self.extra)} not in the manifest: {'OK' if self.ok else 'FAILED'}"]
        for what, names in (("modified", self.modified), ("missing", self.missing), ("not in manifest", self.extra)):
            lines += [f"  {what}: {n}" for n in names[:limit]]
            if len(names) > limit:
                lines.append(f"  ... and {len(names) - limit} more {what}")
        for k, (a, b) in self.versions.items():
            lines.append(f"  note: built with {k} {a}, this software has {b} (a rebuild may differ)")
        return "\n".join(lines)


def verify(root: Path) -> VerifyReport:
    """Re-hash every file of a benchmark folder against its manifest."""
    root = Path(root)
    manifest = read_manifest(root)
    listed = manifest["files"]
    report = VerifyReport()
    on_disk = set(list_files(root))
    for rel, entry in sorted(listed.items()):
        path = root / rel
        if rel not in on_disk:
            report.missing.append(rel)
            continue
        report.checked += 1
        if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            report.modified.append(rel)
    report.extra = sorted(on_disk - set(listed))
    mine = generator_versions()
    report.versions = {k: (v, mine.get(k, "?")) for k, v in manifest.get("generator", {}).items() if mine.get(k) != v}
    return report
