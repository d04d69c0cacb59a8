import hashlib
import io
import socket
import stat
import time
import zipfile

import pytest

from vlwm.io.archives import SCRATCH_DIRNAME, UnsafeArchiveError, safe_extract_zip
from vlwm.io.cli import main
from vlwm.io.download import ChecksumMismatchError, RetryPolicy, UnreachableError
from vlwm.io.layout import PLATEAU_RELDIR
from vlwm.io.lock import DownloadLock
from vlwm.io.plateau import (PLATEAU_DEFAULT_RELEASE, PLATEAU_RELEASES, PLATEAU_TOKYO23_CATALOGUE, PlateauRelease,
                             download_plateau, extract_plateau, plateau_member_path, unmatched_meshes)

TOP = "13100_tokyo23-ku_2023_citygml_1_op"


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("bad", ["../evil.gml", f"{TOP}/udx/bldg/../../../evil.gml", "/etc/evil.gml",
                                 "C:\\evil.gml"])
def test_traversal_member_is_refused_and_nothing_written(tmp_path, bad):
    archive = _zip(tmp_path / "a.zip", {f"{TOP}/udx/bldg/53394525_bldg_6697_op.gml": "ok", bad: "x"})
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="refused"):
        safe_extract_zip(archive, dest)
    assert not dest.exists() or not any(dest.rglob("*"))
    assert not (tmp_path / "evil.gml").exists()


def test_symlink_member_is_refused(tmp_path):
    archive = tmp_path / "l.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        safe_extract_zip(archive, tmp_path / "out")


def test_plateau_keeps_udx_layers_and_mesh_subset(tmp_path):
    archive = _zip(tmp_path / "p.zip", {
        f"{TOP}/udx/bldg/53394525_bldg_6697_op.gml": "b1",
        f"{TOP}/udx/bldg/53394611_bldg_6697_op.gml": "b2",
        f"{TOP}/udx/tran/53394525_tran_6697_op.gml": "t",
        f"{TOP}/udx/luse/53394525_luse_6697_op.gml": "l",
        f"{TOP}/codelists/Building_class.xml": "c",
        f"{TOP}/udx/bldg/": "",
    })
    dest = tmp_path / "tokyo23ku"
    files = extract_plateau(archive, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in files) == [
        "udx/bldg/53394525_bldg_6697_op.gml", "udx/bldg/53394611_bldg_6697_op.gml",
        "udx/tran/53394525_tran_6697_op.gml"]
    subset = extract_plateau(archive, tmp_path / "subset", meshes=["533945"])
    assert sorted(p.name for p in subset) == ["53394525_bldg_6697_op.gml", "53394525_tran_6697_op.gml"]
    with pytest.raises(ValueError, match="no file of udx/") as err:
        extract_plateau(archive, tmp_path / "none", meshes=["5240"])
    assert "533945, 533946" in str(err.value) and "--plateau-mesh" in str(err.value)


def test_member_path_rules():
    assert plateau_member_path("x/udx/dem/533945_dem_6697_op.gml") == "udx/dem/533945_dem_6697_op.gml"
    assert plateau_member_path("x/udx/brid/533945_brid.gml") is None
    assert plateau_member_path("x/codelists/a.xml", layers=None) == "x/codelists/a.xml"


# --- nested archives -------------------------------------------------------------------------------

def _zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _nested_archive(path):
    """An outer zip holding one flat member and two per-mesh inner zips (as some releases ship)."""
    return _zip(path, {
        f"{TOP}/udx/bldg/53394611_bldg_6697_op.gml": "flat",
        f"{TOP}/533945.zip": _zip_bytes({
            "udx/bldg/53394525_bldg_6697_op.gml": "b25",
            "udx/bldg/53394526_bldg_6697_op.gml": "b26",
            "udx/bldg/53394525_appearance/hnap0001.jpg": "tex",
            "udx/dem/533945_dem_6697_op.gml": "dem",
            "udx/luse/533945_luse_6697_op.gml": "luse",
            "indexmap.pdf": "pdf",
        }),
        f"{TOP}/533946.zip": _zip_bytes({"udx/tran/53394601_tran_6697_op.gml": "t01"}),
    })


def _rel(files, dest):
    return sorted(p.relative_to(dest).as_posix() for p in files)


def test_nested_zips_are_extracted_with_layer_and_mesh_filters(tmp_path):
    archive = _nested_archive(tmp_path / "n.zip")
    dest = tmp_path / "all"
    assert _rel(extract_plateau(archive, dest), dest) == [
        "udx/bldg/53394525_bldg_6697_op.gml",
        "udx/bldg/53394526_bldg_6697_op.gml", "udx/bldg/53394611_bldg_6697_op.gml",
        "udx/dem/533945_dem_6697_op.gml", "udx/tran/53394601_tran_6697_op.gml"]
    assert (dest / "udx/bldg/53394525_bldg_6697_op.gml").read_text() == "b25"
    assert not (dest / SCRATCH_DIRNAME).exists() and not list(dest.rglob("*.zip"))

    sub = tmp_path / "sub"       # 3rd-level subset: its tiles, its texture folder, the 2nd-level DEM containing it
    assert _rel(extract_plateau(archive, sub, meshes=["53394525"], textures=True), sub) == [
        "udx/bldg/53394525_appearance/hnap0001.jpg", "udx/bldg/53394525_bldg_6697_op.gml",
        "udx/dem/533945_dem_6697_op.gml"]
    assert _rel(extract_plateau(archive, tmp_path / "notex", meshes=["53394525"]), tmp_path / "notex") == [
        "udx/bldg/53394525_bldg_6697_op.gml", "udx/dem/533945_dem_6697_op.gml"]     # textures off by default
    only = tmp_path / "only"
    assert _rel(extract_plateau(archive, only, layers=["tran"], meshes=["533946"]), only) == [
        "udx/tran/53394601_tran_6697_op.gml"]


def test_unknown_mesh_in_nested_archive_lists_the_codes_that_exist(tmp_path):
    archive = _nested_archive(tmp_path / "n.zip")
    with pytest.raises(ValueError) as err:
        extract_plateau(archive, tmp_path / "x", meshes=["52350000"])
    msg = str(err.value)
    assert "533945, 533946" in msg and "53394525" in msg and "--plateau-mesh" in msg
    assert not (tmp_path / "x" / "udx").exists()
    assert unmatched_meshes([tmp_path / "53394525_bldg_6697_op.gml"], ["533945", "5235"]) == ["5235"]


@pytest.mark.parametrize("bad", ["../../evil.gml", "udx/bldg/../../../../evil.gml", "/tmp/evil.gml"])
def test_traversal_member_of_an_inner_zip_is_refused_and_nothing_written(tmp_path, bad):
    archive = _zip(tmp_path / "outer.zip", {
        f"{TOP}/udx/bldg/53394611_bldg_6697_op.gml": "ok",
        f"{TOP}/533945.zip": _zip_bytes({"udx/bldg/53394525_bldg_6697_op.gml": "ok", bad: "x"}),
    })
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=r"outer\.zip!.*533945\.zip.*refused") as err:
        extract_plateau(archive, dest)
    assert repr(bad) in str(err.value)
    assert not dest.exists() or not any(dest.rglob("*"))      # the outer member was not written either
    assert not (tmp_path / "evil.gml").exists() and not list(tmp_path.parent.glob("evil.gml"))


def test_symlink_in_inner_zip_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("udx/bldg/link.gml")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    archive = _zip(tmp_path / "o.zip", {"a.zip": buf.getvalue()})
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        safe_extract_zip(archive, tmp_path / "out", nested=True)


def test_damaged_archive_is_a_clear_error(tmp_path):
    bad = tmp_path / "cut.zip"
    bad.write_bytes(_nested_archive(tmp_path / "n.zip").read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable zip"):
        extract_plateau(bad, tmp_path / "out")


# --- the pinned catalogue, trust on first use, offline ---------------------------------------------

FAST = RetryPolicy(attempts=3, backoff_s=0.01, connect_timeout_s=2.0, read_timeout_s=5.0)
ZIP_NAME = "13100_tokyo23-ku_2020_citygml_4_2_op.zip"


@pytest.fixture
def pinned(http_server, tmp_path, monkeypatch):
    """The default release's address pointed at the local server; (server state, archive bytes, url path)."""
    base, st = http_server
    body = _nested_archive(tmp_path / "src.zip").read_bytes()
    path = f"/assets/ec/x/{ZIP_NAME}"
    st.files[path] = body
    monkeypatch.setitem(PLATEAU_RELEASES, PLATEAU_DEFAULT_RELEASE,
                        PlateauRelease(PLATEAU_DEFAULT_RELEASE, PLATEAU_TOKYO23_CATALOGUE, (base + path,), 0.001))
    return st, body, path


def _cli(root, *extra):
    return main(["--plateau", "--dest", str(root), "--quiet", "--retries", "3", "--connect-timeout", "2",
                 "--read-timeout", "5", *extra])


def test_default_release_is_downloaded_when_no_address_is_given(pinned, tmp_path, capsys):
    st, body, path = pinned
    root = tmp_path / "root"
    assert _cli(root, "--plateau-mesh", "533945") == 0
    assert [p for p, _ in st.requests] == [path]
    dest = root / PLATEAU_RELDIR
    assert (dest / "downloads" / ZIP_NAME).read_bytes() == body
    assert (dest / "udx/bldg/53394525_bldg_6697_op.gml").read_text() == "b25"
    assert not (dest / "udx/bldg/53394611_bldg_6697_op.gml").exists()
    assert "bldg 2" in capsys.readouterr().out


def test_first_download_is_locked_then_verified_and_a_changed_file_is_refused(pinned, tmp_path):
    st, body, path = pinned
    root = tmp_path / "root"
    files = download_plateau(root, policy=FAST, progress=False)
    archive = root / PLATEAU_RELDIR / "downloads" / ZIP_NAME
    entry = DownloadLock.at(root).get(archive)
    assert entry is not None and entry.sha256 == hashlib.sha256(body).hexdigest() and entry.size == len(body)
    assert len(files) == 5                               # the texture folder is skipped by default

    st.requests.clear()                                  # present and verified: no request, same files
    assert sorted(download_plateau(root, policy=FAST, progress=False)) == sorted(files)
    assert st.requests == []

    archive.unlink()                                     # upstream changes the bytes (same length)
    st.files[path] = body[:-1] + bytes([body[-1] ^ 1])
    with pytest.raises(ChecksumMismatchError) as err:
        download_plateau(root, policy=FAST, progress=False)
    msg = str(err.value)
    assert "trust on first use" in msg and entry.sha256 in msg and "downloads.lock.json" in msg
    assert not archive.exists() and archive.with_name(ZIP_NAME + ".rejected").exists()

    archive.write_bytes(b"edited by hand")               # a present file that disagrees is not touched
    with pytest.raises(ChecksumMismatchError, match="delete"):
        download_plateau(root, policy=FAST, progress=False)
    assert archive.read_bytes() == b"edited by hand"


def test_archive_placed_by_hand_is_locked_without_a_request(pinned, tmp_path):
    st, body, _ = pinned
    root = tmp_path / "root"
    archive = root / PLATEAU_RELDIR / "downloads" / ZIP_NAME
    archive.parent.mkdir(parents=True)
    archive.write_bytes(body)
    assert download_plateau(root, meshes=["533946"], policy=FAST, progress=False)
    assert st.requests == [] and DownloadLock.at(root).get(archive).size == len(body)


def test_url_and_local_zip_override_the_catalogue(http_server, tmp_path):
    base, st = http_server
    body = _nested_archive(tmp_path / "src.zip").read_bytes()
    st.files["/mirror/t.zip"] = body
    root = tmp_path / "root"
    files = download_plateau(root, url=f"{base}/mirror/t.zip", layers=["tran"], policy=FAST, progress=False)
    assert [f.name for f in files] == ["53394601_tran_6697_op.gml"]
    assert (root / PLATEAU_RELDIR / "downloads" / "t.zip").is_file()
    st.files["/moved/t.zip"] = body                      # same name, another address: not silently re-attributed
    with pytest.raises(ValueError, match="was downloaded from .*/mirror/t.zip"):
        download_plateau(root, url=f"{base}/moved/t.zip", policy=FAST, progress=False)

    other = tmp_path / "other"
    assert download_plateau(other, archives=[tmp_path / "src.zip"], layers=["dem"], policy=FAST, progress=False)
    assert len(st.requests) == 1                         # --plateau-zip made no request


def test_two_releases_are_not_mixed_in_one_folder(tmp_path):
    root = tmp_path / "root"
    a = _nested_archive(tmp_path / "13100_tokyo23-ku_2020_citygml_4_2_op.zip")
    b = _nested_archive(tmp_path / "13100_tokyo23-ku_2022_citygml_1_2_op.zip")
    download_plateau(root, archives=[a], progress=False)
    download_plateau(root, archives=[a], meshes=["533946"], progress=False)      # same source: fine
    with pytest.raises(ValueError, match="would mix"):
        download_plateau(root, archives=[b], progress=False)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_offline_fails_fast_naming_the_address_and_how_to_place_the_zip(tmp_path, monkeypatch, capsys):
    url = f"http://127.0.0.1:{_closed_port()}/assets/ec/x/{ZIP_NAME}"
    monkeypatch.setitem(PLATEAU_RELEASES, PLATEAU_DEFAULT_RELEASE,
                        PlateauRelease(PLATEAU_DEFAULT_RELEASE, PLATEAU_TOKYO23_CATALOGUE, (url,), 5.3))
    root = tmp_path / "root"
    t0 = time.monotonic()
    with pytest.raises(UnreachableError) as err:
        download_plateau(root, policy=RetryPolicy(attempts=5, backoff_s=10.0, connect_timeout_s=3.0), progress=False)
    assert time.monotonic() - t0 < 5.0
    msg = str(err.value)
    archive = (root / PLATEAU_RELDIR / "downloads" / ZIP_NAME).resolve()
    assert url in msg and str(archive) in msg and "--plateau-zip" in msg and PLATEAU_TOKYO23_CATALOGUE in msg
    assert _cli(root) == 1                               # the script: exit status 1, the same message
    err_out = capsys.readouterr().err
    assert "error: plateau:" in err_out and url in err_out and "--plateau-zip" in err_out


def test_unknown_release_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="pinned releases: 2020, 2022"):
        download_plateau(tmp_path, release="2019")
