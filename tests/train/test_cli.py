"""``vlwm train``: the same parser and entry point as ``train.py``."""

from __future__ import annotations

import argparse

import pytest

from vlwm.train.cli import add_train_parser, run
from vlwm.train.config import ConfigError, parse_cfg_options


def test_add_train_parser_registers_the_guide_flags():
    parser = argparse.ArgumentParser(prog="vlwm")
    add_train_parser(parser.add_subparsers(dest="verb"))
    for flag in ("--config", "--py-config"):
        args = parser.parse_args(["train", flag, "config/tiny_vqvae.py", "--work-dir", "out/x", "--seed", "3",
                                  "--resume-from", "a.pth", "--load-from", "b.pth", "--cfg-options", "max_epochs=2",
                                  "data_root=/d", "model.vq.embedding_dim=64"])
        assert args.func is run and args.config == "config/tiny_vqvae.py" and args.seed == 3
        assert args.resume_from == "a.pth" and args.load_from == "b.pth"


def test_cfg_options_are_python_literals():
    assert parse_cfg_options(["a.b=1", "c=[1, 2]", "d=text", "e=None", "f=1e-4"]) == \
        {"a.b": 1, "c": [1, 2], "d": "text", "e": None, "f": 1e-4}
    with pytest.raises(ConfigError):
        parse_cfg_options(["novalue"])
