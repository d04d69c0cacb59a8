"""The PLATEAU Tokyo 23-ward CityGML archive: pinned addresses, download, safe extraction, filters.

:data:`PLATEAU_RELEASES` pins the direct address of each published CityGML archive of the 23 wards
on G空間情報センター (``--plateau-release``, default :data:`PLATEAU_DEFAULT_RELEASE`, the release of
the catalogue page the training guide cites).  ``--plateau-url`` replaces the address (a mirror,
or a newer upload after the pinned one moved); ``--plateau-zip`` takes archives already on disk.
PLATEAU publishes no checksums, so the archive is trusted on first use: the first download's
sha256 and size are recorded in the lock file (:mod:`vlwm.io.lock`) and every later run holds the
file to them.

Inside the archive the CityGML lies under ``…/udx/<layer>/<mesh>_<layer>_….gml``; by default only
``udx/{bldg,tran,veg,dem}`` are kept, written at ``<dest>/udx/<layer>/<file>`` (a layer a release
does not have is simply absent).  Inner zips are opened as folders (see :mod:`vlwm.io.archives`).
A mesh-tile subset keeps the files (and per-mesh folders such as ``53394525_appearance``) whose
JIS X 0410 mesh code starts with one of the given prefixes (``5339`` a 1st-level mesh, ``533945``
a 2nd-level, ``53394525`` a 3rd-level one), plus coarser tiles that contain a requested one
(``533945_dem_….gml`` for ``53394525``).
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Mapping, Sequence

from vlwm.io.archives import safe_extract_zip
from vlwm.io.download import (ChecksumMismatchError, Download, RetryPolicy, UnreachableError, fetch,
                              manual_hint, sha256_file)
from vlwm.io.layout import PLATEAU_RELDIR
from vlwm.io.lock import DownloadLock

PLATEAU_TOKYO23_CATALOGUE = "https://www.geospatial.jp/ckan/dataset/plateau-tokyo23ku"
"""Official catalogue page of the Tokyo 23 wards 3D city model (the address the training guide cites)."""
PLATEAU_LAYERS = ("bldg", "tran", "veg", "dem")
"""udx layers kept by default: buildings, roads, vegetation, terrain."""
PLATEAU_ATTRIBUTION = ("3D city model data provided by Ministry of Land, Infrastructure, Transport and Tourism "
                       "(MLIT), Japan - Project PLATEAU. Licensed under CC BY 4.0.")
SOURCE_RECORD = "SOURCE.json"
"""File under the extraction folder naming the archive(s) its CityGML came from."""
MESH_CODE = re.compile(r"\d+")
"""Leading digits of a udx file or folder name: its JIS X 0410 mesh code."""


@dataclass(frozen=True)
class PlateauRelease:
    """One published CityGML release of the Tokyo 23 wards on G空間情報センター."""

    name: str
    """Key of ``--plateau-release`` (the fiscal year of the release)."""
    catalogue: str
    """CKAN dataset page listing the archive: where to look when the pinned address stops working."""
    urls: tuple[str, ...]
    """Direct addresses of the archive(s) of the release; every one is downloaded and extracted."""
    approx_gb: float
    """Approximate download size in GB (10**9 bytes) as reported by users; messages only, never verified."""


PLATEAU_RELEASES: dict[str, PlateauRelease] = {
    "2020": PlateauRelease(
        "2020", PLATEAU_TOKYO23_CATALOGUE,
        ("https://assets.cms.plateau.reearth.io/assets/ec/d51c64-a47f-4a56-aa64-340d1d3c720b/"
         "13100_tokyo23-ku_2020_citygml_4_2_op.zip",), 5.3),
    "2022": PlateauRelease(
        "2022", "https://www.geospatial.jp/ckan/dataset/plateau-tokyo23ku-2022",
        ("https://assets.cms.plateau.reearth.io/assets/74/b317b5-a7b0-426f-ba8b-af5f777c76c5/"
         "13100_tokyo23-ku_2022_citygml_1_2_op.zip",), 5.9),
}
"""Pinned CityGML archives of the 23 wards (one zip each, ``<top>/udx/<layer>/*.gml`` inside)."""
PLATEAU_DEFAULT_RELEASE = "2020"
"""The release of :data:`PLATEAU_TOKYO23_CATALOGUE`, the page the training guide cites."""


def mesh_matches(code: str, meshes: Sequence[str]) -> bool:
    """True when mesh ``code`` lies in one of ``meshes`` or is a coarser tile containing one."""
    return any(code.startswith(m) or m.startswith(code) for m in meshes)


def udx_parts(name: str) -> tuple[str, str, tuple[str, ...]] | None:
    """(layer, mesh code or "", path from ``udx`` on) of an archive member under ``udx/<layer>/``."""
    parts = PurePosixPath(name).parts
    if "udx" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("udx")        # the innermost udx folder
    rel = parts[i:]
    if len(rel) < 3:
        return None
    code = MESH_CODE.match(rel[2])
    return rel[1], code.group(0) if code else "", rel


def plateau_member_path(name: str, layers: Sequence[str] | None = PLATEAU_LAYERS,
                        meshes: Sequence[str] = (), textures: bool = False) -> str | None:
    """Where archive member ``name`` goes (``udx/<layer>/<file>``), or None to skip it.

    ``layers`` None keeps every member at its path inside the archive (mesh filter still applies
    to udx files).  Texture folders (``udx/bldg/<mesh>_appearance/``: the facade images of the
    LOD2 buildings, most of an archive's bytes, unused by occupancy) are skipped unless ``textures``.
    """
    parsed = udx_parts(name)
    if parsed is None:
        return name if layers is None and not meshes and "udx" not in PurePosixPath(name).parts else None
    layer, code, rel = parsed
    if layers is not None and layer not in layers:
        return None
    if not textures and any(part.endswith("_appearance") for part in rel[2:-1]):
        return None
    if meshes and not (code and mesh_matches(code, meshes)):
        return None
    return PurePosixPath(*rel).as_posix()


def extract_plateau(archives: str | os.PathLike | Sequence[str | os.PathLike], dest: str | os.PathLike,
                    layers: Sequence[str] | None = PLATEAU_LAYERS, meshes: Sequence[str] = (),
                    textures: bool = False) -> list[Path]:
    """Extract the selected CityGML files of one or more PLATEAU zips (inner zips included) under ``dest``.

    Returns the paths written or kept.  Raises ValueError when nothing matched, listing the mesh
    codes and layers the archives do have.
    """
    archives = [archives] if isinstance(archives, (str, os.PathLike)) else list(archives)
    bad = [m for m in meshes if not m.isdigit()]
    if bad:
        raise ValueError(f"mesh codes are digits (e.g. 533945 or 53394525), got {bad}")
    seen_layers: set[str] = set()
    seen_codes: set[str] = set()

    def select(name: str) -> str | None:
        parsed = udx_parts(name)
        if parsed is not None:
            seen_layers.add(parsed[0])
            if (layers is None or parsed[0] in layers) and parsed[1]:
                seen_codes.add(parsed[1])
        return plateau_member_path(name, layers, meshes, textures)

    files = []
    for archive in archives:
        files += safe_extract_zip(archive, dest, select, nested=True)
    if not files:
        raise ValueError(_nothing_matched(archives, layers, meshes, seen_layers, seen_codes))
    return files


def unmatched_meshes(files: Sequence[Path], meshes: Sequence[str]) -> list[str]:
    """The requested mesh codes no extracted file belongs to (a typo, or a tile outside the wards)."""
    codes = {m.group(0) for f in files if (m := MESH_CODE.match(f.name))}
    return [m for m in meshes if not any(mesh_matches(c, [m]) for c in codes)]


def _nothing_matched(archives, layers, meshes, seen_layers: set[str], seen_codes: set[str]) -> str:
    names = ", ".join(str(a) for a in archives)
    want = "udx/{" + ",".join(layers or ["*"]) + "}"
    if meshes and seen_codes:
        second = sorted({c[:6] for c in seen_codes})
        shown = ", ".join(second[:24]) + (" ..." if len(second) > 24 else "")
        return (f"{names}: no file of {want} has one of the mesh codes {list(meshes)}.  The archive has "
                f"{len(seen_codes)} mesh codes there, in these 2nd-level meshes: {shown} (3rd-level files "
                f"such as {', '.join(sorted(seen_codes)[:3])}).  Pass codes or prefixes of those to "
                "--plateau-mesh, or leave it out for all 23 wards")
    found = ", ".join(sorted(seen_layers)) or "none"
    return (f"{names}: no member under {want}; layers in the archive: {found}.  Is it the CityGML archive "
            f"of the catalogue page {PLATEAU_TOKYO23_CATALOGUE}?")


def download_plateau(root: str | os.PathLike, release: str = PLATEAU_DEFAULT_RELEASE, url: str | None = None,
                     archives: Sequence[str | os.PathLike] = (), layers: Sequence[str] | None = PLATEAU_LAYERS,
                     meshes: Sequence[str] = (), policy: RetryPolicy = RetryPolicy(), progress: bool = True,
                     releases: Mapping[str, PlateauRelease] | None = None, textures: bool = False) -> list[Path]:
    """Fetch (or take) the PLATEAU CityGML archive(s) and extract them under ``<root>/data/plateau/tokyo23ku``.

    ``archives`` (zips on disk) skip the download; else ``url`` or the pinned addresses of
    ``release`` are fetched to ``<dest>/downloads/<name>``, kept so a re-run resumes or skips them,
    and held to the lock file of ``root`` (first download recorded, later ones verified).
    ``releases`` replaces :data:`PLATEAU_RELEASES` (tests, mirrors).
    """
    root = Path(root)
    dest = root / PLATEAU_RELDIR
    table = PLATEAU_RELEASES if releases is None else releases
    if release not in table:
        raise ValueError(f"unknown PLATEAU release {release!r}; pinned releases: {', '.join(sorted(table))} "
                         f"(or pass --plateau-url URL / --plateau-zip FILE)")
    rel = table[release]
    if archives:
        paths = [Path(a) for a in archives]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ValueError(f"--plateau-zip: no such file: {', '.join(missing)}")
    else:
        paths = _fetch_archives(root, dest, (url,) if url else rel.urls, rel, policy, progress)
    _check_source(dest, paths)
    files = extract_plateau(paths, dest, layers=layers, meshes=meshes, textures=textures)
    _record_source(dest, paths)
    return files


def _fetch_archives(root: Path, dest: Path, urls: Sequence[str], rel: PlateauRelease, policy: RetryPolicy,
                    progress: bool) -> list[Path]:
    """Download (or verify) each archive against the lock file; trust on first use."""
    lock = DownloadLock.at(root)
    paths: list[Path] = []
    unreachable: dict[str, str] = {}
    hints: list[str] = []
    for url in urls:
        name = PurePosixPath(urllib.parse.urlsplit(url).path).name or "plateau_citygml.zip"
        spec = lock.expect(Download(url=url, dest=dest / "downloads" / name))
        entry = lock.get(spec.dest)
        if entry is not None and entry.url != url and spec.dest.is_file():
            raise ValueError(f"{spec.dest} was downloaded from {entry.url} (recorded in {lock.path}), not from "
                             f"{url}: delete it to download it from the new address, or keep using it with "
                             f"--plateau-zip {spec.dest}")
        host = urllib.parse.urlsplit(url).hostname or url
        if host in unreachable and not spec.dest.is_file():
            hints.append(manual_hint(spec))         # same host failed already: do not wait for it again
            continue
        try:
            paths.append(_fetch_tofu(spec, lock, policy, progress))
        except UnreachableError as err:
            unreachable[host] = str(err).split(".  ")[0]
            hints.append(manual_hint(spec))
    if unreachable:
        raise UnreachableError(
            "; ".join(unreachable.values()) + f".  The PLATEAU archive (about {rel.approx_gb:g} GB) is listed on "
            f"{rel.catalogue}.  To place it by hand:\n" + "\n".join(f"  - {h}" for h in hints)
            + "\n  - or keep the zip anywhere and pass it with --plateau-zip FILE")
    return paths


def _fetch_tofu(spec: Download, lock: DownloadLock, policy: RetryPolicy, progress: bool) -> Path:
    """Fetch ``spec`` (already holding the lock's expectation, if any); record it when it had none."""
    locked = spec.sha256 is not None
    try:
        path = fetch(spec, policy=policy, progress=progress)
    except ChecksumMismatchError as err:
        if not locked:
            raise
        raise ChecksumMismatchError(
            f"{err}\n  The expected sha256 {spec.sha256} ({spec.size} bytes) was recorded in {lock.path} by the "
            f"first download of {spec.url} (PLATEAU publishes no checksums: trust on first use).  The file "
            f"served now differs.  If PLATEAU republished the archive on purpose, delete the entry "
            f"{lock.key(spec.dest)!r} from {lock.path} (and the old {spec.dest.name}) and re-run") from None
    if locked:
        return path
    try:
        zipfile.ZipFile(path).close()               # a truncated or wrong file is never trusted
    except (zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path} is not a readable zip ({err}); it was not recorded in {lock.path}.  Delete "
                         f"it and re-run, or {manual_hint(spec)}") from None
    lock.record(spec, sha256_file(path))
    return path


def _check_source(dest: Path, paths: Sequence[Path]) -> None:
    """Refuse to extract one release over another (their files would mix)."""
    record = dest / SOURCE_RECORD
    if not record.is_file():
        return
    before = json.loads(record.read_text()).get("archives", [])
    now = sorted(p.name for p in paths)
    if before and sorted(before) != now:
        raise ValueError(f"{dest} holds CityGML extracted from {', '.join(before)}, not from {', '.join(now)}: "
                         f"the two releases would mix.  Move or delete {dest / 'udx'} and {record} first")


def _record_source(dest: Path, paths: Sequence[Path]) -> None:
    record = dest / SOURCE_RECORD
    record.write_text(json.dumps({"archives": sorted(p.name for p in paths),
                                  "attribution": PLATEAU_ATTRIBUTION}, indent=2) + "\n")
