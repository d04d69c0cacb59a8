import stat
import zipfile

import pytest

from vlwm.io.archives import UnsafeArchiveError, safe_extract_zip
from vlwm.io.plateau import extract_plateau, plateau_member_path

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
    with pytest.raises(ValueError, match="no member matched"):
        extract_plateau(archive, tmp_path / "none", meshes=["5240"])


def test_member_path_rules():
    assert plateau_member_path("x/udx/dem/533945_dem_6697_op.gml") == "udx/dem/533945_dem_6697_op.gml"
    assert plateau_member_path("x/udx/brid/533945_brid.gml") is None
    assert plateau_member_path("x/codelists/a.xml", layers=None) == "x/codelists/a.xml"
