"""Teacher-forced validation during training (SPEC §5): per-step mIoU / IoU, loss terms, a BEV image.

The metric is the OccWorld protocol's arithmetic (:mod:`vlwm.models.occupancy_iou`, the same as
:class:`vlwm.eval.OccForecastMetric` without masks or groups) at the 2 Hz horizons of
:mod:`vlwm.data.horizons`.  Each batch runs one forward pass, which gives the losses and the
predictions alike.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from vlwm.data.dataset import collate_fn
from vlwm.data.horizons import horizon_steps
from vlwm.gt.bev import bev_image
from vlwm.labels import FREE, NUM_OCC_CLASSES
from vlwm.models.occupancy_iou import LabelCounts, check_labels, mean_iou
from vlwm.train.config import TrainConfig
from vlwm.train.step import autocast_context, batch_inputs, loss_terms, model_forward, predictions

BEV_SEPARATOR_PX = 4        #: width of the grey bar between target and prediction in the validation image
BEV_SEPARATOR_GREY = 128


class ForecastIoU:
    """Per-step semantic mIoU and geometry IoU of ``num_steps`` predicted frames, pooled over batches.

    :meth:`scalars` gives ``miou_<t>``, ``iou_<t>`` per step, ``miou_at_<h>`` / ``iou_at_<h>`` at the
    reported horizons (1 s, 2 s, 3 s at 2 Hz) and their means over steps, ``miou`` / ``iou`` (%).
    """

    def __init__(self, num_steps: int):
        self.num_steps = num_steps
        self.horizons = horizon_steps(num_steps)
        self.counts = LabelCounts(num_steps, NUM_OCC_CLASSES)
        self.class_ids = [c for c in range(NUM_OCC_CLASSES) if c != FREE]

    def update(self, pred: Tensor, target: Tensor) -> None:
        """pred, target : (B, T, X, Y, Z) int64 class ids on one device."""
        if pred.shape != target.shape or pred.shape[1] != self.num_steps:
            raise ValueError(f"ForecastIoU.update: pred {tuple(pred.shape)} and target {tuple(target.shape)} must "
                             f"both be (B, {self.num_steps}, X, Y, Z)")
        for name, x in (("pred", pred), ("target", target)):
            check_labels(x, NUM_OCC_CLASSES, f"ForecastIoU.update: {name}")
        self.counts.add(LabelCounts.of(pred, target, NUM_OCC_CLASSES))

    def scalars(self) -> dict[str, float]:
        miou, iou = mean_iou(self.counts.class_iou(self.class_ids)), self.counts.geometry_iou(FREE)
        out = {f"miou_{t}": float(v) for t, v in enumerate(miou)}
        out.update({f"iou_{t}": float(v) for t, v in enumerate(iou)})
        out.update({f"miou_at_{h}": float(miou[k]) for h, k in self.horizons.items()})
        out.update({f"iou_at_{h}": float(iou[k]) for h, k in self.horizons.items()})
        out["miou"] = float(np.mean(miou))
        out["iou"] = float(np.mean(iou))
        return out


def bev_pair(target: Tensor, pred: Tensor) -> np.ndarray:
    """Target and prediction bird's-eye views side by side: (3, X, 2Y + 4) uint8, channels first for
    TensorBoard, x forward up the image, with a grey separator.  ``target``, ``pred``: (X, Y, Z) class ids."""
    a, b = (bev_image(g.detach().cpu().numpy(), scale=1, height_shading=False).transpose(2, 0, 1)
            for g in (target, pred))
    sep = np.full((3, a.shape[1], BEV_SEPARATOR_PX), BEV_SEPARATOR_GREY, np.uint8)
    return np.ascontiguousarray(np.concatenate([a, sep, b], axis=2))


@torch.no_grad()
def validate(model: nn.Module, dataset, cfg: TrainConfig,
             device: torch.device) -> tuple[dict[str, float], np.ndarray | None]:
    """Teacher-forced validation: per-step mIoU / IoU of the reconstruction (VQ-VAE) or of the
    next-frame predictions (world model) and the mean loss terms, from one forward per batch; plus a
    BEV image (3, H, W) uint8 of the first sample's first frame, target beside prediction
    (:func:`bev_pair`).  ``({}, None)`` when the split gives no batch."""
    model.eval()
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.num_workers,
                        collate_fn=collate_fn)
    metric, sums, n, image = None, {}, 0, None
    for i, batch in enumerate(loader):
        if cfg.evaluation.max_batches is not None and i >= cfg.evaluation.max_batches:
            break
        occ, rel, mode = batch_inputs(batch, cfg, device)
        with autocast_context(cfg, device):
            out = model_forward(model, cfg, occ, rel, mode, decode=True)
            _, terms = loss_terms(model, cfg, out, occ)
        pred, target = predictions(cfg, out, occ)
        metric = metric or ForecastIoU(target.shape[1])
        metric.update(pred, target)
        if image is None:
            image = bev_pair(target[0, 0], pred[0, 0])
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        n += 1
    model.train()
    if metric is None:
        return {}, None
    return {**metric.scalars(), **{k: v / n for k, v in sums.items()}}, image
