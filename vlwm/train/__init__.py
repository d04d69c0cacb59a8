"""Stage: training — config loading and validation, the loop, checkpoints, logging, distributed.

* :mod:`vlwm.train.config` — :func:`load_config` (mmengine python configs with ``_base_``) into
  :class:`TrainConfig` (typed; unknown keys are errors); :mod:`vlwm.train.model_config` holds
  its ``model`` sections.
* :mod:`vlwm.train.engine` — :func:`train`, the plain-function loop (DDP, AMP, accumulation,
  resume, epochs, checkpoints), returning a :class:`~vlwm.train.engine.TrainSummary`.
* :mod:`vlwm.train.step` — freezing / progressive unfreezing, batch inputs, forward and named losses.
* :mod:`vlwm.train.optim` — AdamW, the warmup + cosine schedule, one optimizer step.
* :mod:`vlwm.train.validation` — teacher-forced validation (mIoU / IoU, losses, a BEV image).
* :mod:`vlwm.train.checkpoint` — atomic checkpoints, exact resume, ``load_from`` with adaptation.
* :mod:`vlwm.train.cli` — ``vlwm train`` / ``train.py``.

See ``docs/training.md``.
"""

from vlwm.train.config import ConfigError, TrainConfig, load_config, train_config_from_dict

__all__ = ["ConfigError", "TrainConfig", "load_config", "train_config_from_dict"]
