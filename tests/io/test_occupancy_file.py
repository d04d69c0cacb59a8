"""The frame file format (vlwm.io.occupancy_file): lossless round trips, old npz files, atomic writes, damage."""

from __future__ import annotations

import numpy as np
import pytest

from vlwm.io import occupancy_file as of

SHAPE = (12, 10, 7)
FREE = 17


def grids(seed: int, instances: str = "sparse"):
    rng = np.random.default_rng(seed)
    sem = np.where(rng.random(SHAPE) < 0.7, FREE, rng.integers(0, 17, SHAPE)).astype(np.uint8)
    ml = (rng.random(SHAPE) < 0.3).astype(np.uint8)
    mc = (rng.random(SHAPE) < 0.5).astype(np.uint8)
    inst = np.zeros(SHAPE, np.int32)
    if instances == "sparse":
        inst[sem == 4] = rng.integers(1, 2 ** 31 - 1, int((sem == 4).sum()))
        inst.flat[0] = -5                                      # any int32 value survives
    t = rng.normal(size=(4, 4)) / 3.0                          # floats that need all 17 digits
    return sem, ml, mc, inst, t


@pytest.mark.parametrize("seed,instances", [(0, "sparse"), (1, "empty"), (2, "none")])
def test_round_trip_every_array_exactly(tmp_path, seed, instances):
    sem, ml, mc, inst, t = grids(seed, instances)
    path = of.write_frame(tmp_path / of.frame_name(3), sem, free=FREE, T_world_grid=t, mask_lidar=ml,
                          mask_camera=mc, instances=None if instances == "none" else inst)
    assert path.name == "000003_occupancy.vlo" and [p.name for p in tmp_path.iterdir()] == [path.name]
    back = of.read_frame(path)
    expected = {"semantics": sem, "mask_lidar": ml, "mask_camera": mc, "occupancy": (sem != FREE).astype(np.uint8),
                "T_world_grid": t}
    if instances != "none":
        expected["instances"] = inst
    assert set(back) == set(expected)
    for key, arr in expected.items():
        assert back[key].dtype == arr.dtype and back[key].shape == arr.shape, key
        np.testing.assert_array_equal(back[key], arr, err_msg=key)
    # only what is asked for is decoded; straight into caller buffers of uint8, bool and int32
    assert set(of.read_frame(path, ["semantics"])) == {"semantics"}
    out = {"semantics": np.empty(SHAPE, np.uint8), "mask_lidar": np.empty(SHAPE, bool),
           "mask_camera": np.empty(SHAPE, np.uint8), "instances": np.full(SHAPE, 99, np.int32)}
    got = of.read_frame(path, ["semantics", "mask_lidar", "mask_camera", "instances"], out=out)
    for key in got:
        assert got[key] is out[key]
    np.testing.assert_array_equal(out["mask_lidar"], ml.astype(bool))
    np.testing.assert_array_equal(out["semantics"], sem)
    if instances != "none":
        np.testing.assert_array_equal(out["instances"], inst)
    # the same input gives the same bytes; the header tells shapes and dtypes without decoding
    assert b"".join(of.encode_frame(sem, free=FREE, T_world_grid=t, mask_lidar=ml, mask_camera=mc,
                                    instances=None if instances == "none" else inst)) == path.read_bytes()
    info = of.peek_frame(path)
    assert info["semantics"] == of.ArrayInfo(SHAPE, np.dtype(np.uint8)) and info["T_world_grid"].shape == (4, 4)


def test_masks_that_are_not_bits_and_bool_masks_round_trip(tmp_path):
    sem, ml, mc, inst, t = grids(5)
    odd = (ml * 3).astype(np.uint8)                              # not 0/1: stored whole, still exact
    path = of.write_frame(tmp_path / "f.vlo", sem, free=FREE, T_world_grid=t, mask_lidar=odd,
                          mask_camera=mc.astype(bool))
    back = of.read_frame(path)
    np.testing.assert_array_equal(back["mask_lidar"], odd)
    np.testing.assert_array_equal(back["mask_camera"], mc)
    assert "instances" not in back


def test_writer_refuses_what_it_cannot_store(tmp_path):
    sem, ml, mc, inst, t = grids(6)
    with pytest.raises(ValueError, match="semantics must be"):
        of.write_frame(tmp_path / "a.vlo", sem.astype(np.int16), free=FREE, T_world_grid=t)
    with pytest.raises(ValueError, match="mask_lidar has shape"):
        of.write_frame(tmp_path / "a.vlo", sem, free=FREE, T_world_grid=t, mask_lidar=ml[:-1])
    with pytest.raises(ValueError, match="do not fit int32"):
        of.write_frame(tmp_path / "a.vlo", sem, free=FREE, T_world_grid=t, instances=inst.astype(np.int64) * 2 ** 33)
    assert list(tmp_path.iterdir()) == []


def test_old_npz_files_read_through_the_same_functions(tmp_path):
    sem, ml, mc, inst, t = grids(7)
    old = {"semantics": sem, "mask_lidar": ml, "mask_camera": mc, "occupancy": (sem != FREE).astype(np.uint8),
           "T_world_grid": t, "instances": inst}
    np.savez_compressed(tmp_path / of.frame_name(2, legacy=True), **old)
    path = of.find_frame(tmp_path, 2)
    assert path.name == "000002_occupancy.npz" and of.is_legacy(path)
    back = of.read_frame(path)
    for key, arr in old.items():
        assert back[key].dtype == arr.dtype
        np.testing.assert_array_equal(back[key], arr)
    assert set(of.read_frame(path, ["semantics", "instances"])) == {"semantics", "instances"}
    assert of.peek_frame(path)["instances"] == of.ArrayInfo(SHAPE, np.dtype(np.int32))
    # both formats present: the new one wins everywhere
    of.write_frame(tmp_path / of.frame_name(2), sem, free=FREE, T_world_grid=t)
    of.write_frame(tmp_path / of.frame_name(5), sem, free=FREE, T_world_grid=t)
    assert of.find_frame(tmp_path, 2).suffix == ".vlo" and of.find_frame(tmp_path, 9) is None
    assert {k: p.name for k, p in of.list_frames(tmp_path).items()} == {2: "000002_occupancy.vlo",
                                                                       5: "000005_occupancy.vlo"}


def test_write_is_atomic(tmp_path):
    sem, ml, mc, inst, t = grids(8)
    path = of.write_frame(tmp_path / "f.vlo", sem, free=FREE, T_world_grid=t)
    before = path.read_bytes()

    def parts():
        yield b"partial bytes"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        of._write_parts(path, parts())
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["f.vlo"]


def test_damage_is_reported_naming_the_file(tmp_path):
    sem, ml, mc, inst, t = grids(9)
    path = of.write_frame(tmp_path / "f.vlo", sem, free=FREE, T_world_grid=t, mask_lidar=ml, instances=inst)
    data = path.read_bytes()
    cases = {"flip.vlo": data[:-20] + bytes([data[-20] ^ 0x10]) + data[-19:],
             "header.vlo": data[:20] + bytes([data[20] ^ 0x01]) + data[21:],
             "cut.vlo": data[: len(data) - 7],
             "text.vlo": b"hello, not a frame file at all",
             "zip.vlo": b"PK\x03\x04 not really a zip"}
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(of.FrameFileError, match=name):
            of.read_frame(tmp_path / name)
    for name in ("header.vlo", "cut.vlo", "text.vlo", "zip.vlo"):              # the cheap header check sees these
        with pytest.raises(of.FrameFileError, match=name):
            of.peek_frame(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="missing.vlo"):
        of.read_frame(tmp_path / "missing.vlo")
    with pytest.raises(of.FrameFileError, match=r"grid shape \(12, 10, 7\), expected \(3, 3, 3\)"):
        of.read_frame(path, ["semantics"], out={"semantics": np.empty((3, 3, 3), np.uint8)})
