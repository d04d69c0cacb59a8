"""Training configuration: OpenMMLab-style python config files parsed into typed dataclasses.

Files are read with mmengine's :class:`~mmengine.config.Config` (``_base_`` inheritance,
``--cfg-options key=value`` overrides), then validated into :class:`TrainConfig`.  Every key of the
file must be a field below: an unknown or misspelt key is a :class:`ConfigError` naming it (with
the nearest known key), never ignored.

The keys are the training guide's (§4, §5: ``model``, ``optimizer``, ``lr_config``, ``grad_clip``,
``log_config``, ``checkpoint_config``, ``load_from``, ``max_epochs``, ``data``, ``point_cloud_range``,
``voxel_size``, ``fp16`` …), but the model sections describe the *official* OccWorld architecture
by default (``VAERes2D`` with 512 x 128 codes, SPEC §2-3) so the released weights load.
"""

from __future__ import annotations

import ast
import difflib
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from vlwm.gt.grid import AERIAL, GridSpec
from vlwm.models.config import VAEConfig, WorldModelConfig
from vlwm.train.model_config import ConfigError, VQVAEModelConfig, WorldModelSection


# ---------------------------------------------------------------------------------------------
# Optimisation, logging, checkpoints
# ---------------------------------------------------------------------------------------------


@dataclass
class OptimizerConfig:
    """``optimizer``: AdamW over all parameters (frozen ones never get gradients), as officially."""

    type: str = "AdamW"
    """Only ``'AdamW'``."""
    lr: float = 1e-3
    """Peak learning rate."""
    weight_decay: float = 0.01
    """Decoupled weight decay."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam betas."""
    eps: float = 1e-8
    """Adam epsilon."""


@dataclass
class LrConfig:
    """``lr_config``: per-iteration cosine annealing with linear warmup (timm ``CosineLRScheduler``
    semantics, SPEC §5: warmup counted inside the cosine period)."""

    policy: str = "CosineAnnealing"
    """Only ``'CosineAnnealing'``."""
    min_lr: float = 1e-6
    """Final learning rate."""
    warmup: Optional[str] = "linear"
    """``'linear'`` or None."""
    warmup_iters: Optional[int] = None
    """Warmup iterations; None = the top-level ``warmup_iters``."""
    warmup_ratio: Optional[float] = None
    """Warmup starts at ``warmup_ratio * lr``; None = at ``min_lr`` (official ``warmup_lr_init=1e-6``)."""


@dataclass
class GradClipConfig:
    """``grad_clip``: ``clip_grad_norm_`` before each optimizer step."""

    max_norm: float = 35.0
    """Maximum total gradient norm."""
    norm_type: float = 2.0
    """p of the p-norm."""


@dataclass
class LoggerHook:
    """One entry of ``log_config.hooks``."""

    type: str
    """``'TextLoggerHook'`` (text log + ``scalars.jsonl``), ``'TensorboardLoggerHook'`` (TensorBoard in
    ``work_dir/tf_logs``) or ``'WandbLoggerHook'`` (Weights & Biases; needs ``wandb``)."""
    init_kwargs: Optional[dict] = None
    """``wandb.init`` keywords (WandbLoggerHook only)."""


LOGGER_HOOKS = ("TextLoggerHook", "TensorboardLoggerHook", "WandbLoggerHook")


@dataclass
class LogConfig:
    """``log_config``."""

    interval: int = 10
    """Log every this many iterations."""
    hooks: tuple[LoggerHook, ...] = (LoggerHook("TextLoggerHook"),)
    """Where scalars go."""


@dataclass
class CheckpointConfig:
    """``checkpoint_config``: ``epoch_N.pth`` every ``interval`` epochs; ``latest.pth`` always."""

    interval: int = 1
    """Epochs between kept checkpoints."""
    max_keep_ckpts: int = -1
    """Keep only the newest N ``epoch_*.pth`` (-1 keeps all)."""


@dataclass
class EvaluationConfig:
    """``evaluation``: validation on ``data.val``."""

    interval: int = 1
    """Validate every this many epochs (0 = never)."""
    max_batches: Optional[int] = None
    """Validate on at most this many batches (None = the whole split)."""


@dataclass
class Fp16Config:
    """``fp16 = dict(loss_scale='dynamic')``: float16 autocast with a dynamic ``GradScaler``."""

    loss_scale: Union[str, float] = "dynamic"
    """Only ``'dynamic'``."""


@dataclass
class UnfreezeStep:
    """One step of ``unfreeze_schedule``: from ``epoch`` on (1-based), exactly ``trainable`` train."""

    epoch: int
    """First epoch (1-based) of this phase."""
    trainable: tuple[str, ...]
    """Parts that train: any of ``'pose'``, ``'transformer'``, ``'vae'``, ``'vae_encoder'``,
    ``'vae_decoder'``; everything else is frozen."""


@dataclass
class DataConfig:
    """``data``: ``train`` / ``val`` dataset dicts (:func:`vlwm.data.mixing.build_dataset` format).
    Top-level dataset keys (``data_root``, ``history_frames`` …) fill what these leave out."""

    train: Optional[dict] = None
    """Training dataset dict; None = a GazeboOccWorldDataset from the top-level keys."""
    val: Optional[dict] = None
    """Validation dataset dict; None = the same with ``split='val'``."""
    test: Optional[dict] = None
    """Test dataset dict (used by evaluation, not by training)."""


# ---------------------------------------------------------------------------------------------
# The whole file
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """A training run (one config file, after ``_base_`` merging and ``--cfg-options``)."""

    model: Union[VQVAEModelConfig, WorldModelSection] = field(default_factory=WorldModelSection)
    """The model: ``type='VAERes2D'`` trains the tokenizer (stage 1), ``'OccWorld'`` the world model."""
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    """Optimizer."""
    lr_config: LrConfig = field(default_factory=LrConfig)
    """LR schedule."""
    warmup_iters: int = 50
    """Warmup iterations (guide's top-level key; ``lr_config.warmup_iters`` wins)."""
    grad_clip: Optional[GradClipConfig] = field(default_factory=GradClipConfig)
    """Gradient clipping; None disables it."""
    log_config: LogConfig = field(default_factory=LogConfig)
    """Logging."""
    checkpoint_config: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Checkpointing."""
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    """Validation."""
    load_from: Optional[str] = None
    """Weights to start from (strict, with a report; depth / pose adapted when shapes call for it)."""
    resume_from: Optional[str] = None
    """Full training state to resume (as ``--resume-from``)."""
    max_epochs: int = 200
    """Epochs."""
    batch_size: int = 1
    """Samples per process per step."""
    accumulate_steps: int = 1
    """Gradient accumulation: optimizer step every this many batches."""
    num_workers: int = 1
    """DataLoader workers per process."""
    seed: int = 42
    """Seed (models, shuffling; also ``--seed``)."""
    fp16: Optional[Fp16Config] = None
    """Float16 mixed precision with loss scaling (``fp16 = dict(loss_scale='dynamic')``)."""
    bf16: bool = False
    """bfloat16 autocast (no scaler) where the device supports it."""
    unfreeze_schedule: Optional[tuple[UnfreezeStep, ...]] = None
    """Progressive unfreezing; overrides the ``freeze_*`` flags when given."""
    data: DataConfig = field(default_factory=DataConfig)
    """Datasets."""
    data_root: str = "data/tokyo_gazebo/"
    """Default ``data_root`` of Gazebo datasets."""
    dataset_type: str = "GazeboOccWorldDataset"
    """Default ``type`` of ``data.train`` / ``data.val`` entries without one."""
    point_cloud_range: tuple[float, ...] = AERIAL.point_cloud_range
    """Grid extent [x0, y0, z0, x1, y1, z1] m; sets the model's depth and resolution."""
    voxel_size: tuple[float, ...] = AERIAL.voxel_size
    """Voxel size [dx, dy, dz] m."""
    agent_type: Optional[str] = None
    """Default ``agent_type`` of Gazebo datasets."""
    history_frames: Optional[int] = None
    """Default history frames of Gazebo datasets."""
    future_frames: Optional[int] = None
    """Default future frames of Gazebo datasets."""
    frame_skip: Optional[int] = None
    """Default frame skip of Gazebo datasets."""
    train_ratio: Optional[float] = None
    """Default split ratio of Gazebo datasets."""
    val_ratio: Optional[float] = None
    """Default split ratio of Gazebo datasets."""
    test_ratio: Optional[float] = None
    """Default split ratio of Gazebo datasets."""
    transform: Optional[dict] = None
    """Default augmentation of the *training* Gazebo datasets (the guide's §5.6 dict:
    ``dict(RandomFlip=dict(prob=0.5), RandomRotate=dict(angle=[-5, 5]), PointCloudNoise=dict(std=0.02))``)."""
    work_dir: Optional[str] = None
    """Output folder (``--work-dir`` wins)."""
    device: Optional[str] = None
    """``'cpu'``, ``'cuda'``…; None = CUDA when available."""

    # ------------------------------------------------------------------ derived

    @property
    def stage(self) -> str:
        """``'vqvae'`` or ``'world_model'``."""
        return "vqvae" if isinstance(self.model, VQVAEModelConfig) else "world_model"

    @property
    def grid(self) -> GridSpec:
        try:
            return GridSpec(tuple(self.point_cloud_range), tuple(self.voxel_size))
        except ValueError as err:
            raise ConfigError(f"point_cloud_range / voxel_size: {err}") from err

    def model_config(self) -> VAEConfig | WorldModelConfig:
        if isinstance(self.model, VQVAEModelConfig):
            return self.model.vae_config(self.grid)
        return self.model.world_model_config(self.grid)

    def dataset_defaults(self) -> dict[str, Any]:
        """Top-level keys that fill Gazebo datasets' ``config``."""
        keys = ("agent_type", "history_frames", "future_frames", "frame_skip", "train_ratio", "val_ratio",
                "test_ratio")
        out = {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
        out["point_cloud_range"] = list(self.point_cloud_range)
        out["voxel_size"] = list(self.voxel_size)
        return out

    def dataset_dict(self, split: str) -> dict:
        """The resolved dataset dict of ``split`` (top-level defaults applied)."""
        given = getattr(self.data, split)
        if given is None:
            given = {"type": self.dataset_type}
        return _fill_dataset(dict(given), self, split)

    def validate(self) -> None:
        """Check everything that can be checked without data (raises :class:`ConfigError`)."""
        _ = self.grid
        self.model_config()
        if self.optimizer.type != "AdamW":
            raise ConfigError(f"optimizer.type = {self.optimizer.type!r}; only 'AdamW' is implemented")
        if self.lr_config.policy != "CosineAnnealing":
            raise ConfigError(f"lr_config.policy = {self.lr_config.policy!r}; only 'CosineAnnealing' is implemented")
        if self.lr_config.warmup not in (None, "linear"):
            raise ConfigError(f"lr_config.warmup = {self.lr_config.warmup!r}; use 'linear' or None")
        for h in self.log_config.hooks:
            if h.type not in LOGGER_HOOKS:
                raise ConfigError(f"log_config.hooks: unknown type {h.type!r}; known: {list(LOGGER_HOOKS)}")
        if self.fp16 is not None and self.fp16.loss_scale != "dynamic":
            raise ConfigError(f"fp16.loss_scale = {self.fp16.loss_scale!r}; only 'dynamic' is implemented")
        if self.fp16 is not None and self.bf16:
            raise ConfigError("fp16 and bf16 are both set; choose one")
        for name in ("max_epochs", "batch_size", "accumulate_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.unfreeze_schedule is not None:
            if self.stage != "world_model":
                raise ConfigError("unfreeze_schedule applies to the world model (model.type='OccWorld')")
            epochs = [s.epoch for s in self.unfreeze_schedule]
            if not epochs or epochs[0] != 1 or epochs != sorted(set(epochs)):
                raise ConfigError(f"unfreeze_schedule epochs must start at 1 and increase, got {epochs}")
            for s in self.unfreeze_schedule:
                bad = sorted(set(s.trainable) - set(PARTS))
                if bad:
                    raise ConfigError(f"unfreeze_schedule (epoch {s.epoch}): unknown part(s) {bad}; known: {list(PARTS)}")
        for split in ("train", "val"):
            d = getattr(self.data, split)
            if d is not None and not isinstance(d, Mapping):
                raise ConfigError(f"data.{split} must be a dict")

    def to_dict(self) -> dict:
        return _plain(asdict(self))


PARTS = ("pose", "transformer", "vae", "vae_encoder", "vae_decoder")
"""Names of the world-model parts the freeze flags and ``unfreeze_schedule`` refer to."""


def _fill_dataset(d: dict, cfg: TrainConfig, split: str) -> dict:
    d.setdefault("type", cfg.dataset_type)
    if d["type"] == "ConcatDataset":
        d["datasets"] = [_fill_dataset(dict(x), cfg, split) for x in d.get("datasets", [])]
        return d
    if d["type"] == "GazeboOccWorldDataset":
        d.setdefault("data_root", cfg.data_root)
        extra = {"transform": cfg.transform} if split == "train" and cfg.transform is not None else {}
        conf = {**cfg.dataset_defaults(), **extra, "split": split, **dict(d.get("config") or {})}
        d["config"] = conf
    return d


def _plain(x):
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


# ---------------------------------------------------------------------------------------------
# Strict dict -> dataclass conversion
# ---------------------------------------------------------------------------------------------


def _nearest(key: str, known: list[str]) -> str:
    near = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{near[0]}'?)" if near else ""


def from_dict(cls, d: Any, where: str):
    """Build dataclass ``cls`` from ``d``; unknown keys and wrong types raise :class:`ConfigError`."""
    if is_dataclass(d):
        return d
    known = [f.name for f in fields(cls)]
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where} must be a dict with the keys {known}, got {type(d).__name__} {d!r}")
    hints = typing.get_type_hints(cls)
    for key in d:
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}'{_nearest(str(key), known)}; known keys: {known}")
    return cls(**{k: _convert(hints[k], v, f"{where}.{k}") for k, v in d.items()})


def _convert(tp, value: Any, where: str):
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _convert(opt, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: no form fits {value!r}: " + "; ".join(errors))
    if is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        if inner is None and len(args) != len(value):
            raise ConfigError(f"{where} must have {len(args)} entries, got {list(value)!r}")
        return tuple(_convert(inner or args[i], v, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a dict, got {value!r}")
        return _plain(dict(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be True or False, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def train_config_from_dict(d: Mapping[str, Any], source: str = "<dict>") -> TrainConfig:
    """Validate a plain config dict into a :class:`TrainConfig` (errors name ``source`` and the key)."""
    d = dict(d)
    model = d.pop("model", None)
    try:
        cfg = from_dict(TrainConfig, d, "config")
        if model is not None:
            if not isinstance(model, Mapping):
                raise ConfigError(f"config.model must be a dict, got {model!r}")
            kind = model.get("type", "OccWorld")
            section = VQVAEModelConfig if kind == "VAERes2D" else WorldModelSection
            cfg.model = from_dict(section, model, "model")
        cfg.validate()
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return cfg


def parse_cfg_options(items: list[str] | None) -> dict:
    """``['a.b=1', 'c=[1, 2]', 'd=text']`` -> ``{'a.b': 1, 'c': [1, 2], 'd': 'text'}``."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--cfg-options: '{item}' is not key=value")
        key, value = item.split("=", 1)
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def load_config(path: str | Path, cfg_options: Mapping[str, Any] | None = None) -> tuple[TrainConfig, Any]:
    """Read a python config file (``_base_`` inheritance) with mmengine, apply ``cfg_options``
    (dotted keys), and validate.  Returns the typed config and the merged mmengine ``Config``."""
    from mmengine.config import Config

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    raw = Config.fromfile(str(path))
    if cfg_options:
        raw.merge_from_dict(dict(cfg_options))
    plain = _plain(raw.to_dict())
    return train_config_from_dict(plain, str(path)), raw
