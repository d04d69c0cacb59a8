"""Smoke tests: each stage trains from the real entry point (``python train.py``) on a tiny scene."""

from __future__ import annotations

import json

import torch

from vlwm.models import read_checkpoint

QUICK = ["max_epochs=1", "frame_skip=6"]


def test_vqvae_then_world_model_from_entry_point(tiny_data, tmp_path, train_cli, read_scalars):
    vq = tmp_path / "vq"
    r = train_cli("--py-config", "config/tiny_vqvae.py", "--work-dir", str(vq), "--cfg-options",
                  f"data_root={tiny_data}", *QUICK)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for name in ("config.py", "config.json", "cmdline.txt", "version.json", "train.log", "latest.pth", "epoch_1.pth"):
        assert (vq / name).exists(), name
    assert "tiny_vqvae.py" in (vq / "cmdline.txt").read_text()
    assert json.loads((vq / "config.json").read_text())["data_root"] == str(tiny_data)
    assert list((vq / "tf_logs").iterdir()), "TensorBoard events written"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(vq / "tf_logs")).Reload()
    assert "val/bev_target_vs_prediction" in events.Tags()["images"]
    assert {"train/loss", "train/lr", "train/grad_norm", "val/miou"} <= set(events.Tags()["scalars"])
    ckpt = read_checkpoint(vq / "latest.pth")                 # weights_only=True
    for key in ("state_dict", "optimizer", "scheduler", "scaler", "epoch", "global_iter", "rng", "config",
                "model_args"):
        assert key in ckpt
    assert ckpt["epoch"] == 1 and ckpt["model_args"]["depth"] == 8
    logged = read_scalars(vq)
    assert {"loss", "loss_recon", "loss_lovasz", "loss_embed", "lr", "grad_norm"} <= set(logged[1])
    assert "miou" in next(iter(read_scalars(vq, "val").values()))

    wm = tmp_path / "wm"
    r = train_cli("--config", "config/tiny_occworld.py", "--work-dir", str(wm), "--cfg-options",
                  f"data_root={tiny_data}", f"model.vqvae_ckpt={vq / 'latest.pth'}", *QUICK)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "vqvae_ckpt" in (wm / "train.log").read_text()
    sd = read_checkpoint(wm / "latest.pth")["state_dict"]
    vae_sd = read_checkpoint(vq / "latest.pth")["state_dict"]
    for k, v in vae_sd.items():                             # VAE loaded and kept frozen
        assert torch.equal(sd["vae." + k], v), k
    assert {"loss_ce", "loss_plan_reg"} <= set(read_scalars(wm)[1])


def test_config_error_names_the_key(tmp_path, train_cli):
    bad = tmp_path / "bad.py"
    bad.write_text("_base_ = ['%s']\noptimizer = dict(lrr=1e-4)\n" % (tmp_path.parent / "x.py"))
    (tmp_path.parent / "x.py").write_text("max_epochs = 1\n")
    r = train_cli("--py-config", str(bad), "--work-dir", str(tmp_path / "out"))
    assert r.returncode == 2
    assert "optimizer: unknown key 'lrr' (did you mean 'lr'?)" in r.stderr
    assert not (tmp_path / "out").exists()
