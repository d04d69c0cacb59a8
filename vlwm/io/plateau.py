"""The PLATEAU Tokyo 23-ward CityGML archive: download, safe extraction, layer and mesh filters.

The official catalogue page is :data:`PLATEAU_TOKYO23_CATALOGUE` (G空間情報センター, the address
the training guide cites).  The archive's direct address changes with each yearly release, so it is
an argument (``--plateau-url``), not a constant here; an archive already on disk is used with
``--plateau-zip``.  Inside the archive the CityGML lies under ``…/udx/<layer>/<mesh>_<layer>_….gml``;
by default only ``udx/{bldg,tran,veg,dem}`` are kept, written at ``<dest>/udx/<layer>/<file>``.
A mesh-tile subset keeps the files whose name starts with one of the given JIS X 0410 mesh-code
prefixes (``5339`` a 1st-level mesh, ``533945`` a 2nd-level, ``53394525`` a 3rd-level one).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Sequence

from vlwm.io.archives import safe_extract_zip
from vlwm.io.download import Download, RetryPolicy, fetch

PLATEAU_TOKYO23_CATALOGUE = "https://www.geospatial.jp/ckan/dataset/plateau-tokyo23ku"
"""Official catalogue page of the Tokyo 23 wards 3D city model (CityGML download links)."""
PLATEAU_LAYERS = ("bldg", "tran", "veg", "dem")
"""udx layers kept by default: buildings, roads, vegetation, terrain."""
PLATEAU_ATTRIBUTION = ("3D city model data provided by Ministry of Land, Infrastructure, Transport and Tourism "
                       "(MLIT), Japan - Project PLATEAU. Licensed under CC BY 4.0.")


def plateau_member_path(name: str, layers: Sequence[str] | None = PLATEAU_LAYERS,
                        meshes: Sequence[str] = ()) -> str | None:
    """Where archive member ``name`` goes (``udx/<layer>/<file>``), or None to skip it.

    ``layers`` None keeps every member at its path inside the archive (mesh filter still applies
    to udx files).
    """
    parts = PurePosixPath(name).parts
    if "udx" not in parts:
        return name if layers is None and not meshes else None
    i = parts.index("udx")
    rel = parts[i:]
    if len(rel) < 3:
        return None
    if layers is not None and rel[1] not in layers:
        return None
    if meshes and not any(rel[-1].startswith(m) for m in meshes):
        return None
    return PurePosixPath(*rel).as_posix()


def extract_plateau(archive: str | os.PathLike, dest: str | os.PathLike,
                    layers: Sequence[str] | None = PLATEAU_LAYERS, meshes: Sequence[str] = ()) -> list[Path]:
    """Extract the selected CityGML files of a PLATEAU archive under ``dest``; return their paths."""
    bad = [m for m in meshes if not m.isdigit()]
    if bad:
        raise ValueError(f"mesh codes are digits (e.g. 533945 or 53394525), got {bad}")
    files = safe_extract_zip(archive, dest, lambda n: plateau_member_path(n, layers, meshes))
    if not files:
        raise ValueError(f"{archive}: no member matched udx/{{{','.join(layers or ['*'])}}}"
                         + (f" with mesh prefixes {list(meshes)}" if meshes else "")
                         + "; is it the CityGML archive of the catalogue page " + PLATEAU_TOKYO23_CATALOGUE + "?")
    return files


def download_plateau(dest: str | os.PathLike, url: str | None = None, archive: str | os.PathLike | None = None,
                     layers: Sequence[str] | None = PLATEAU_LAYERS, meshes: Sequence[str] = (),
                     policy: RetryPolicy = RetryPolicy(), progress: bool = True) -> list[Path]:
    """Fetch (``url``) or take (``archive``) the PLATEAU CityGML zip and extract it under ``dest``.

    The zip is kept at ``<dest>/downloads/<name>`` so a re-run resumes or skips it.
    """
    dest = Path(dest)
    if archive is None:
        if url is None:
            raise ValueError("no PLATEAU archive address: open " + PLATEAU_TOKYO23_CATALOGUE + ", copy the link of "
                             "the CityGML zip and pass it with --plateau-url URL, or download the zip by hand and "
                             "pass --plateau-zip FILE")
        name = PurePosixPath(url.split("?", 1)[0]).name or "plateau_citygml.zip"
        archive = fetch(Download(url=url, dest=dest / "downloads" / name), policy=policy, progress=progress)
    return extract_plateau(archive, dest, layers=layers, meshes=meshes)
