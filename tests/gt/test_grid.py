"""Grid specs: preset shapes, whole-voxel validation with usable suggestions, index <-> centre maps."""

import re

import numpy as np
import pytest

from vlwm.gt.grid import AERIAL, GRID_PRESETS, OCC3D, GridSpec, grid_preset


def test_presets_have_the_documented_shapes_and_extents():
    assert OCC3D.shape == (200, 200, 16) and OCC3D.point_cloud_range == (-40, -40, -1, 40, 40, 5.4)
    assert AERIAL.shape == (200, 200, 121) and AERIAL.voxel_size == (0.4, 0.4, 1.25)
    assert AERIAL.point_cloud_range[2:6:3] == (-2.0, 149.25)
    assert set(GRID_PRESETS) == {"occ3d", "aerial"} and grid_preset("aerial") is AERIAL
    with pytest.raises(ValueError, match="unknown grid preset 'nuscenes'.*aerial"):
        grid_preset("nuscenes")


def test_the_guide_example_is_refused_with_ranges_that_divide():
    with pytest.raises(ValueError) as err:
        GridSpec((-40, -40, -2, 40, 40, 150), (0.4, 0.4, 1.25))
    msg = str(err.value)
    assert "z: (150 - (-2)) / 1.25 = 121.6" in msg and "x:" not in msg and "y:" not in msg
    suggested = re.findall(r"\[(-?[\d.]+), (-?[\d.]+)\] \((\d+) voxels\)", msg)
    assert ("-2", "149.25", "121") in suggested and ("-2", "150.5", "122") in suggested
    for lo, hi, n in suggested:  # every suggestion is a valid grid of the announced size
        assert GridSpec((-40, -40, float(lo), 40, 40, float(hi)), (0.4, 0.4, 1.25)).shape[2] == int(n)


@pytest.mark.parametrize("rng_, size, match", [
    ((0, 0, 0, 1, 1, 1), (0.0, 1, 1), "voxel_size x = 0 must be positive"),
    ((0, 0, 5, 1, 1, 1), (1, 1, 1), "z range \\[5, 1\\] is empty"),
    ((0, 0, 0, 1, 1), (1, 1, 1), "6 numbers"),
    ((0, 0, 0, 1, 1.05, 1), (0.1, 0.1, 0.1), "y: .* = 10.5 voxels"),
])
def test_invalid_specs_say_what_is_wrong(rng_, size, match):
    with pytest.raises(ValueError, match=match):
        GridSpec(rng_, size)


def test_float_rounding_does_not_break_divisibility():
    spec = GridSpec((-51.2, -51.2, -5.0, 51.2, 51.2, 3.0), (0.2, 0.2, 0.2))  # 102.4 / 0.2 in floating point
    assert spec.shape == (512, 512, 40)


def test_index_and_centre_round_trip(rng):
    spec = GridSpec((-3.0, -2.0, -1.0, 5.0, 4.0, 2.0), (0.5, 0.25, 0.75))
    idx = np.stack([rng.integers(0, n, 500) for n in spec.shape], 1)
    centres = spec.centres(idx)
    back, inside = spec.index_of(centres)
    np.testing.assert_array_equal(back, idx)
    assert inside.all()
    pts = rng.uniform(spec.lower - 1, spec.upper + 1, (2000, 3))
    idx, inside = spec.index_of(pts)
    in_box = np.all((pts >= spec.lower) & (pts < spec.upper), axis=1)
    np.testing.assert_array_equal(inside, in_box)
    assert np.all(np.abs(spec.centres(idx[inside]) - pts[inside]) <= spec.size / 2 + 1e-12)
    np.testing.assert_allclose(spec.all_centres()[2, 3, 1], spec.centres([[2, 3, 1]])[0])


def test_json_round_trip_and_checks():
    d = AERIAL.to_json()
    assert d == {"point_cloud_range": [-40.0, -40.0, -2.0, 40.0, 40.0, 149.25], "voxel_size": [0.4, 0.4, 1.25],
                 "shape": [200, 200, 121]}
    assert GridSpec.from_json(d) == AERIAL
    with pytest.raises(ValueError, match="stored shape \\(200, 200, 16\\) disagrees"):
        GridSpec.from_json({**d, "shape": [200, 200, 16]})
    with pytest.raises(ValueError, match="unknown keys \\['voxels'\\]"):
        GridSpec.from_json({**d, "voxels": 3})
