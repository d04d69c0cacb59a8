"""The benchmark end to end on the ``tiny`` preset: build -> verify -> eval, reproducibility, held-out splits."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vlwm.benchmark.build import build_benchmark, check_plateau
from vlwm.benchmark.evaluate import baseline_forecast, predictions_forecast, score
from vlwm.benchmark.layout import read_info, read_windows, split_dataset
from vlwm.benchmark.manifest import read_manifest, verify
from vlwm.benchmark.predictions import save_prediction
from vlwm.benchmark.presets import PRESETS, get_preset
from vlwm.cli import main
from vlwm.gt.grid import GridSpec


def _quiet(*_):
    pass


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Two tiny builds of the same software into different folders."""
    root = tmp_path_factory.mktemp("bench")
    a, b = root / "a", root / "elsewhere" / "b"
    build_benchmark(get_preset("tiny"), a, workers=1, log=_quiet)
    build_benchmark(get_preset("tiny"), b, workers=2, log=_quiet)
    return a, b


def test_two_builds_have_identical_manifests(builds):
    a, b = builds
    assert (a / "MANIFEST.json").read_bytes() == (b / "MANIFEST.json").read_bytes()
    files = read_manifest(a)["files"]
    assert any(f.endswith("sequence.json") for f in files) and any(f.endswith("_occupancy.vlo") for f in files)
    assert not any("/lidar/" in f for f in files)                  # the tiny preset drops the sweeps


def test_verify_passes_then_names_modified_missing_and_extra_files(builds, tmp_path, capsys):
    a, _ = builds
    assert verify(a).ok
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    frame = sorted((copy / "splits" / "test").glob("*/occupancy/000002_occupancy.vlo"))[0]
    data = bytearray(frame.read_bytes())
    data[len(data) // 2] ^= 0xFF
    frame.write_bytes(bytes(data))
    pose = sorted((copy / "splits" / "train").glob("*/poses/000001.json"))[0]
    pose.unlink()
    (copy / "stray.txt").write_text("x")
    (copy / "results" / "m").mkdir(parents=True)                  # eval output is not part of the build
    (copy / "results" / "m" / "results.json").write_text("{}")
    report = verify(copy)
    rel = lambda p: p.relative_to(copy).as_posix()                  # noqa: E731
    assert report.modified == [rel(frame)] and report.missing == [rel(pose)] and report.extra == ["stray.txt"]
    assert main(["benchmark", "verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert rel(frame) in out and rel(pose) in out and "FAILED" in out


def test_splits_are_held_out_by_district(builds):
    a, _ = builds
    info = read_info(a)
    split_of = {d["name"]: d["split"] for d in info["districts"]}
    for s in info["sequences"]:
        assert s["split"] == split_of[s["district"]]
        assert (a / "splits" / s["split"] / s["name"]).is_dir()
        for other in {"train", "val", "test"} - {s["split"]}:
            assert not (a / "splits" / other / s["name"]).exists()
    assert {w["district"] for w in read_windows(a)} <= {d for d, s in split_of.items() if s == "test"}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_put_each_district_and_tile_in_one_split(name):
    preset = get_preset(name)
    names = [d.name for d in preset.districts]
    tiles = [d.gml for d in preset.districts if d.gml]
    procedural = [(d.seed, d.size, d.style) for d in preset.districts if d.source == "procedural"]
    assert len(names) == len(set(names)) and len(tiles) == len(set(tiles)) and len(procedural) == len(set(procedural))
    assert {d.split for d in preset.districts} == {"train", "val", "test"}


def test_missing_plateau_tiles_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="53395404_bldg_6697_op.gml.*--plateau-dir"):
        check_plateau(get_preset("small"), tmp_path)


def test_eval_baselines_through_the_cli(builds, tmp_path, capsys):
    a, _ = builds
    for name in ("copy_last", "ego_warp_cv", "ego_warp_true"):
        assert main(["benchmark", "eval", str(a), "--baseline", name, "--out", str(tmp_path / name)]) == 0
        res = json.loads((tmp_path / name / "results.json").read_text())
        assert res["method"] == name and res["oracle"] == (name == "ego_warp_true") and res["complete"]
        assert res["manifest_sha256"] and res["num_windows"] == len(read_windows(a))
        overall = res["scores"]["overall"]
        for key in ("miou", "miou_present", "iou"):
            assert set(overall[key]) == {"1s", "2s", "3s", "avg"}
            assert all(0 <= overall[key][h] <= 100 for h in ("1s", "2s", "3s"))
        assert {"agent/drone", "agent/rover", "band/low"} <= set(res["scores"])
        assert (overall["trajectory"] is not None) == (name == "ego_warp_cv")
    assert "ego_warp_true (oracle)" in capsys.readouterr().out


def test_a_perfect_prediction_scores_100(builds, tmp_path):
    a, _ = builds
    info = read_info(a)
    windows = read_windows(a)
    ds = split_dataset(a, "test", info, info["eval_window_stride"], load_instances=True)
    t_h = info["history_frames"]
    from vlwm.eval.baselines import future_grid_motion

    for w in windows:
        sample = ds[w["index"]]
        frames = future_grid_motion(sample)
        traj = frames[:, :3] + np.c_[np.zeros((len(frames), 2)), np.asarray(sample["ego_height"][t_h:], np.float64)]
        save_prediction(tmp_path / "with_ids", w["id"], np.asarray(sample["future_occupancy"]), traj,
                        np.asarray(sample["future_instances"]))
        save_prediction(tmp_path / "no_ids", w["id"], np.asarray(sample["future_occupancy"]))
    shape = (info["future_frames"], *info["grid"]["shape"])
    res = score(a, "perfect", predictions_forecast(tmp_path / "with_ids", windows, shape))
    assert res["scores"]["overall"]["vpq"]["all"] is not None            # the tiny test district has traffic
    for pop, e in res["scores"].items():
        for key in ("miou", "miou_present", "iou"):
            assert e[key] == {"1s": 100.0, "2s": 100.0, "3s": 100.0, "avg": 100.0}, (pop, key)
        assert all(v["avg"] == 100.0 for v in e["class_iou"].values())
        assert e["vpq"]["all"] in (None, 100.0)
        assert e["trajectory"]["ade"] == 0.0 and e["trajectory"]["fde"] == 0.0
    # without instance ids VPQ cuts the perfect occupancy into connected components: touching
    # objects merge, so it may fall below 100; occupancy scores are unchanged and no trajectory is scored
    res = score(a, "perfect-no-ids", predictions_forecast(tmp_path / "no_ids", windows, shape))
    overall = res["scores"]["overall"]
    assert overall["miou"]["avg"] == 100.0 and overall["trajectory"] is None
    assert 0 < overall["vpq"]["all"] <= 100.0


def test_predictions_dir_errors_name_the_problem(builds, tmp_path):
    a, _ = builds
    info = read_info(a)
    windows = read_windows(a)
    shape = (info["future_frames"], *info["grid"]["shape"])
    with pytest.raises(FileNotFoundError, match=f"{len(windows)} of {len(windows)} windows"):
        predictions_forecast(tmp_path, windows, shape)
    for w in windows:
        save_prediction(tmp_path, w["id"], np.full(shape[:1] + (4, 4, 4), 17, np.uint8))
    with pytest.raises(ValueError, match=r"has shape \(6, 4, 4, 4\)"):
        score(a, "bad", predictions_forecast(tmp_path, windows, shape))
    assert main(["benchmark", "eval", str(a), "--predictions", str(tmp_path / "nowhere")]) == 2


def test_eval_of_a_changed_build_refuses(builds, tmp_path):
    a, _ = builds
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    seq = sorted((copy / "splits" / "test").iterdir())[0]
    shutil.rmtree(seq)
    spec = GridSpec(tuple(read_info(copy)["grid"]["point_cloud_range"]), tuple(read_info(copy)["grid"]["voxel_size"]))
    with pytest.raises(ValueError, match="verify"):
        score(copy, "copy_last", baseline_forecast("copy_last", spec))


def test_build_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").write_text("keep me")
    assert main(["benchmark", "build", "--preset", "tiny", "--out", str(tmp_path)]) == 2
    assert (tmp_path / "x").read_text() == "keep me"


def test_the_small_training_configs_use_the_small_grid():
    from vlwm.benchmark.evaluate import DEFAULT_MODEL_CONFIG
    from vlwm.train.config import load_config

    small = get_preset("small")
    for path in (DEFAULT_MODEL_CONFIG, DEFAULT_MODEL_CONFIG.with_name("benchmark_small_vqvae.py")):
        cfg, _ = load_config(path)
        assert cfg.grid.point_cloud_range == small.point_cloud_range and cfg.grid.voxel_size == small.voxel_size
        d = cfg.dataset_dict("train")["config"]
        assert (d["history_frames"], d["future_frames"]) == (small.history_frames, small.future_frames)


def test_a_world_model_checkpoint_is_scored_with_its_trajectory(builds, tmp_path):
    """The --checkpoint path end to end (random weights: the numbers mean nothing, the plumbing does)."""
    import torch

    from vlwm.benchmark.evaluate import DEFAULT_MODEL_CONFIG, checkpoint_forecast
    from vlwm.models import build_world_model
    from vlwm.train.config import load_config

    a, _ = builds
    tiny = get_preset("tiny")
    config = tmp_path / "tiny_wm.py"
    config.write_text(f"_base_ = [{str(DEFAULT_MODEL_CONFIG)!r}]\npoint_cloud_range = {list(tiny.point_cloud_range)}\n"
                      f"voxel_size = {list(tiny.voxel_size)}\n")
    cfg, _ = load_config(config)
    torch.manual_seed(0)
    torch.save({"state_dict": build_world_model(cfg.model_config()).state_dict()}, tmp_path / "wm.pth")
    spec = GridSpec(tiny.point_cloud_range, tiny.voxel_size)
    res = score(a, "occworld", checkpoint_forecast(tmp_path / "wm.pth", config, spec), max_windows=2, threads=None)
    assert res["num_windows"] == 2 and not res["complete"]
    assert res["scores"]["overall"]["trajectory"]["ade"] >= 0
    with pytest.raises(ValueError, match="not the benchmark's"):
        checkpoint_forecast(tmp_path / "wm.pth", DEFAULT_MODEL_CONFIG, spec)
