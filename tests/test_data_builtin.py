"""The built-in data sets: scikit-learn's digits and their simulated event-camera recordings (n-digits)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snn_deploy.data import info, names, open_splits
from snn_deploy.data.digits import raw_digits, split_indices
from snn_deploy.data.dvs_sim import SensorParams, sampling_matrix, simulate
from snn_deploy.data.ndigits import generate, sensor
from snn_deploy.errors import UserError

SIZE = 8


def test_registry_lists_every_format():
    assert {"digits", "n-digits", "cifar10", "cifar100", "imagenet", "imagefolder", "dvs128-gesture",
            "cifar10-dvs"} <= set(names())
    with pytest.raises(UserError, match="did you mean digits"):
        info("digit")


def test_digits_split_is_fixed_stratified_and_disjoint():
    _, labels = raw_digits()
    train, test = split_indices(labels)
    assert (train.size, test.size) == (1442, 355)
    assert not set(train) & set(test)
    counts = np.bincount(labels[test], minlength=10)
    assert counts.min() >= 34 and counts.max() <= 37  # a fifth of each class's 174..183 images
    splits = open_splits("digits", size=8, T=4)
    assert len(splits.train) == 1442 and len(splits.test) == 355


@pytest.mark.parametrize("size", [8, 16, 32])
def test_digits_sizes(size):
    splits = open_splits("digits", size=size, T=4)
    x = splits.test.sample(0, None)
    assert x.shape == (1, size, size) and 0 <= float(x.min()) and float(x.max()) <= 1
    shifted = splits.train.sample(0, np.random.default_rng(3))
    assert shifted.shape == x.shape


def test_digits_refuse_other_sizes():
    with pytest.raises(UserError, match="qkformer-tiny"):
        open_splits("digits", size=24, T=4)


def _subset_events(seed: int, count: int = 40):
    images, _ = raw_digits()
    return simulate(images[:count] / 16.0, sensor(SIZE), seed)


def test_n_digits_same_seed_same_events_other_seed_other_sensor():
    a, b, c = _subset_events(0), _subset_events(0), _subset_events(1)
    for field in ("x", "y", "p", "t", "offsets"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not (a.x.size == c.x.size and np.array_equal(a.x, c.x) and np.array_equal(a.t, c.t))
    first = open_splits("n-digits", size=SIZE, T=4).train.sample(5, None)
    generate.cache_clear()
    again = open_splits("n-digits", size=SIZE, T=4).train.sample(5, None)
    assert torch.equal(first, again) and first.shape == (4, 2, SIZE, SIZE)


def test_n_digits_event_statistics():
    table, labels = generate(SIZE)
    counts = np.diff(table.offsets)
    assert counts.size == labels.size == 1797
    assert 100 < counts.mean() < 2000 and counts.min() > 20  # every digit makes events; none floods
    assert 0.35 < table.p.mean() < 0.65  # both polarities, roughly balanced over a closed saccade loop
    # events concentrate on edges: pixels whose rendered ink changes along the path
    params = sensor(SIZE)
    images, _ = raw_digits()
    still = images.reshape(-1, 64) / 16.0 @ sampling_matrix(8, params, 0.0, 0.0).T  # [N, pixels]
    grid = still.reshape(-1, SIZE, SIZE)
    gy, gx = np.gradient(grid, axis=(1, 2))
    edge = np.hypot(gy, gx) > 0.05
    for _ in range(int(np.ceil(params.amplitude))):  # the path moves edges by up to the amplitude
        edge = edge | np.roll(edge, 1, 1) | np.roll(edge, -1, 1) | np.roll(edge, 1, 2) | np.roll(edge, -1, 2)
    sample = np.repeat(np.arange(counts.size), counts)
    on_edges = edge[sample, table.y, table.x]
    assert on_edges.mean() > 0.95
    assert edge.mean() < 0.9  # the criterion is not trivially all pixels


def test_blank_scene_gives_only_background_noise():
    params = SensorParams(size=SIZE, amplitude=1.0, noise_hz=0.0)
    quiet = simulate(np.zeros((3, 8, 8)), params, seed=0)
    assert quiet.x.size == 0
    noisy = simulate(np.zeros((50, 8, 8)), SensorParams(size=SIZE, amplitude=1.0, noise_hz=10.0), seed=0)
    expected = 50 * SIZE * SIZE * 10.0 * params.steps * params.dt_us * 1e-6
    assert abs(noisy.x.size - expected) < 4 * np.sqrt(expected)


def test_n_digits_frames_hold_every_event():
    table, _ = generate(SIZE)
    splits = open_splits("n-digits", size=SIZE, T=4)
    train_index = 0
    frames = splits.train.sample(train_index, None)
    original = int(splits.train.indices[train_index])
    assert frames.sum() == table.offsets[original + 1] - table.offsets[original]
    assert (frames[:, 0].sum() > 0) and (frames[:, 1].sum() > 0)
