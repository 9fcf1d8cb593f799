"""Exploration noises and target-network updates against their definitions."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from flare.algorithm_zoo.target_networks import hard_update, soft_update
from flare.common.noises import GaussianNoise, OrnsteinUhlenbeckNoise


def test_gaussian_noise_scale_and_seed():
    first = GaussianNoise(3, sigma=0.5, seed=1).sample()
    np.testing.assert_array_equal(first, GaussianNoise(3, sigma=0.5, seed=1).sample())
    noise = GaussianNoise(2, sigma=0.5, seed=0)
    many = np.stack([noise.sample() for _ in range(20000)])
    assert many.shape == (20000, 2) and many.dtype == np.float32
    assert np.abs(many.mean(0)).max() < 0.02
    assert np.abs(many.std(0) - 0.5).max() < 0.02


def test_ornstein_uhlenbeck_is_correlated_and_mean_reverting():
    theta, sigma, dt = 1.0, 0.5, 0.1
    noise = OrnsteinUhlenbeckNoise(1, theta=theta, sigma=sigma, dt=dt, seed=0)
    path = np.array([noise.sample()[0] for _ in range(100000)])
    decay = 1 - theta * dt  # the discrete process: x' = decay x + sigma sqrt(dt) e
    stationary_std = sigma * np.sqrt(dt / (1 - decay**2))
    assert path.std() == pytest.approx(stationary_std, rel=0.05)
    lag1 = np.corrcoef(path[:-1], path[1:])[0, 1]
    assert lag1 == pytest.approx(decay, abs=0.01)
    assert abs(path.mean()) < 0.05
    noise.reset()
    assert noise.state.tolist() == [0.0]


def test_ornstein_uhlenbeck_rejects_bad_parameters():
    with pytest.raises(ValueError, match="theta"):
        OrnsteinUhlenbeckNoise(1, theta=0.0)


def _pair():
    torch.manual_seed(0)
    source = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    target = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    source[1].running_mean.fill_(3.0)
    return source, target


def test_hard_update_copies_everything():
    source, target = _pair()
    hard_update(target, source)
    for t, s in zip(target.state_dict().values(), source.state_dict().values(), strict=True):
        assert torch.equal(t, s)


def test_soft_update_is_polyak_averaging():
    source, target = _pair()
    before = [p.clone() for p in target.parameters()]
    soft_update(target, source, tau=0.1)
    for t, b, s in zip(target.parameters(), before, source.parameters(), strict=True):
        assert torch.allclose(t, 0.9 * b + 0.1 * s)
    assert torch.equal(target[1].running_mean, source[1].running_mean)
    with pytest.raises(ValueError, match="tau"):
        soft_update(target, source, tau=1.5)
