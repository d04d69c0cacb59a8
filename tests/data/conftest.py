"""Fixtures of the data tests: the tiny synthetic recordings of :mod:`tests.helpers.recordings`."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.helpers.recordings import (CAMS, CAR_INSTANCE, MARKER_INSTANCE, TINY, frame_grid, frame_instances, marker,
                                      trajectory, write_sequence)
from vlwm.gt.grid import GridSpec


@pytest.fixture
def tiny_grid() -> GridSpec:
    return TINY


@pytest.fixture
def synth():
    """Helpers: ``synth.write(root, name, **kw)``, ``synth.grid``, ``synth.frame_grid``, ``synth.marker``,
    ``synth.config(**kw)`` (a DatasetConfig on the tiny grid)."""
    from vlwm.data.config import DatasetConfig

    def config(**kw):
        base = dict(point_cloud_range=TINY.point_cloud_range, voxel_size=TINY.voxel_size)
        base.update(kw)
        return DatasetConfig(**base)

    return SimpleNamespace(write=write_sequence, grid=TINY, frame_grid=frame_grid, marker=marker, config=config,
                           cams=CAMS, trajectory=trajectory, frame_instances=frame_instances,
                           car_instance=CAR_INSTANCE, marker_instance=MARKER_INSTANCE)
