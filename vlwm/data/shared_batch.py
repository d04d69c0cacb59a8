"""Batches decoded once, in place: buffers a DataLoader worker reuses, and the zero-copy collate.

Without this, every 10-frame aerial sample (48 MB of uint8 grids) is paid for three times: the
frames are decoded into fresh arrays, copied into the sample, then copied again by
``default_collate`` into *new* shared memory — whose first write costs a page fault per 4 kB page
(shared memory gets no huge pages), 19 ms of a 48 MB batch on the 2-core VM against 3.7 ms for
the same writes into memory already mapped.  Here:

* :meth:`GazeboOccWorldDataset.__getitems__ <vlwm.data.dataset.GazeboOccWorldDataset.__getitems__>`
  (called by the DataLoader for a whole batch) asks :func:`batch_arrays` for one (B, T, X, Y, Z)
  array per grid key and decodes every frame straight into its row;
* inside a DataLoader worker those arrays live in a *slot*: a shared-memory block the worker keeps
  and reuses (:class:`SlotPool`), so its pages are faulted in once, not per batch;
* :func:`collate_grids` returns the batch's tensors as views of those arrays (no copy) and, in a
  worker, a :class:`SharedBatch`: when the main process unpickles it, its tensors view the slot's
  memory, and when the last of them (or of their views) is freed — after the training step copied
  it to the device, or the pin-memory thread to pinned memory — a finalizer marks the slot free in
  the slot's own header, and the worker writes into it again.  A slot still held (a batch kept
  in a list) is never overwritten: the worker takes another, or fresh shared memory when all of its
  :data:`SLOTS_PER_WORKER` are held.

Slot header: two int64, ``sent`` (written by the worker: how many batches it sent from the slot)
and ``freed`` (written by the receiving process: the last of them it released).  The slot is free
when they are equal; each side writes only its own field, so no lock is needed.
"""

from __future__ import annotations

import weakref
from typing import Any, Mapping

import numpy as np
import torch
from torch.utils.data import get_worker_info

SLOTS_PER_WORKER = 4            #: reused batches per worker (prefetch 2 + one held by the consumer + one being freed)
_HEADER = 64                    #: bytes before a slot's arrays (two int64, padded to a cache line)
_ALIGN = 64                     #: each array starts on a cache line (int32 views need 4)


def _offsets(spec: Mapping[str, tuple[tuple[int, ...], np.dtype]]) -> tuple[dict[str, int], int]:
    offsets, total = {}, 0
    for key, (shape, dtype) in spec.items():
        offsets[key] = total
        total += -(-int(np.prod(shape)) * np.dtype(dtype).itemsize // _ALIGN) * _ALIGN
    return offsets, total


class Slot:
    """One reusable block of shared memory (a worker's), with its header."""

    def __init__(self, nbytes: int):
        self.tensor = torch.empty(_HEADER + nbytes, dtype=torch.uint8).share_memory_()   # (HEADER + n,) uint8
        self.bytes = self.tensor.numpy()
        self.header = self.bytes[:16].view(np.int64)          # [sent, freed]
        self.header[:] = 0
        self.nbytes = nbytes

    @property
    def free(self) -> bool:
        return int(self.header[1]) == int(self.header[0])


class SlotPool:
    """The slots of one process (a DataLoader worker), reused across batches."""

    def __init__(self, max_slots: int):
        self.max_slots, self.slots = max_slots, []

    def acquire(self, nbytes: int) -> Slot:
        """A free slot of at least ``nbytes`` (an existing one, else a new one while fewer than
        ``max_slots`` exist, else a one-off slot that is not kept)."""
        for slot in self.slots:
            if slot.nbytes >= nbytes and slot.free:
                return slot
        slot = Slot(nbytes)
        if len(self.slots) < self.max_slots:
            self.slots.append(slot)
        return slot


_POOL: SlotPool | None = None   # this worker's (created on first use inside a worker; never in the main process)


class BatchArrays:
    """Arrays of one batch, ``key -> (B, ...)``, in a worker's slot (``slot``) or in plain memory (None)."""

    def __init__(self, spec: Mapping[str, tuple[tuple[int, ...], np.dtype]], shared: bool | None = None):
        global _POOL
        offsets, total = _offsets(spec)
        if shared is None:
            shared = get_worker_info() is not None
        self.slot: Slot | None = None
        self.layout = {k: (offsets[k], np.dtype(dtype).str, tuple(shape)) for k, (shape, dtype) in spec.items()}
        if shared:
            if _POOL is None:
                _POOL = SlotPool(SLOTS_PER_WORKER)
            self.slot = _POOL.acquire(total)
            payload = self.slot.bytes[_HEADER:_HEADER + total]
            self.arrays = {k: _view(payload, *self.layout[k]) for k in spec}
        else:
            self.arrays = {k: np.empty(shape, dtype) for k, (shape, dtype) in spec.items()}


def _view(payload: np.ndarray, offset: int, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return payload[offset:offset + n].view(dtype).reshape(shape)


def batch_arrays(spec: Mapping[str, tuple[tuple[int, ...], np.dtype]]) -> BatchArrays:
    """Arrays for one batch: ``spec`` maps key -> ((B, ...) shape, dtype); in a DataLoader worker they
    live in a reused shared-memory slot, elsewhere in ordinary memory."""
    return BatchArrays(spec)


class SharedBatch(dict):
    """A collated batch whose grid tensors view a worker's slot; pickles to the slot, not its bytes."""

    slot: Slot | None = None
    layout: dict = {}
    sent: int = 0
    _pickled: list | None = None

    def __reduce__(self):
        if self.slot is None:
            return dict, (dict(self),)
        self._pickled[0] = True
        rest = {k: v for k, v in self.items() if k not in self.layout}
        return _rebuild, (self.slot.tensor, self.sent, self.layout, rest, list(self))


def _unsent(pickled: list, header: np.ndarray, sent: int) -> None:
    if not pickled[0]:                                  # dropped in the worker without being sent
        header[1] = sent


def _release(header: np.ndarray, sent: int) -> None:
    header[1] = sent                                    # the worker may write this slot again


def _rebuild(slot: torch.Tensor, sent: int, layout: dict, rest: dict, order: list[str]) -> dict:
    """Main-process side of :class:`SharedBatch`: the batch's tensors view the slot; freeing them frees it."""
    raw = slot.numpy()
    header = raw[:16].view(np.int64)
    keeper = raw[_HEADER:]                              # every tensor below keeps this array alive
    weakref.finalize(keeper, _release, header, sent)
    base = torch.from_numpy(keeper)
    grids = {k: _tensor_view(base, *spec) for k, spec in layout.items()}
    return {k: grids[k] if k in grids else rest[k] for k in order}


def _tensor_view(base: torch.Tensor, offset: int, dtype: str, shape: tuple[int, ...]) -> torch.Tensor:
    dt = np.dtype(dtype)
    n = int(np.prod(shape)) * dt.itemsize
    return base[offset:offset + n].view(_TORCH_DTYPES[dt]).view(shape)


_TORCH_DTYPES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.bool_): torch.bool, np.dtype(np.int32): torch.int32,
                 np.dtype(np.int64): torch.int64, np.dtype(np.float32): torch.float32}


def collate_grids(batch: BatchArrays, rest: Mapping[str, Any], order: list[str]) -> dict[str, Any]:
    """The collated batch: the grid arrays of ``batch`` as tensors (views, no copy) and ``rest`` (the
    other keys, already collated), in ``order``; a :class:`SharedBatch` when ``batch`` is in a slot,
    else a plain dict.  Memory: a worker keeps up to :data:`SLOTS_PER_WORKER` slots of one batch each
    (4 x 48 MB for 10-frame aerial samples, batch size 1, grids only)."""
    grids = {k: torch.from_numpy(a) for k, a in batch.arrays.items()}
    if batch.slot is None:
        return {k: grids[k] if k in grids else rest[k] for k in order}
    out = SharedBatch({k: grids[k] if k in grids else rest[k] for k in order})
    if batch.slot is not None:
        # Busy from now: the queue pickles the batch later, in a feeder thread, while the worker goes on.
        batch.slot.header[0] += 1
        out.slot, out.layout, out.sent, out._pickled = batch.slot, batch.layout, int(batch.slot.header[0]), [False]
        weakref.finalize(out, _unsent, out._pickled, batch.slot.header, out.sent)
    return out
