"""Exploration noise for continuous actions (DDPG and friends), seeded for repeatable runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


class GaussianNoise:
    """Independent ``N(0, sigma^2)`` noise per step."""

    def __init__(self, size: int | Sequence[int], sigma: float = 0.1, seed: int | None = None):
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.size, self.sigma = size, sigma
        self._rng = np.random.default_rng(seed)

    def sample(self) -> np.ndarray:
        return self._rng.normal(0.0, self.sigma, self.size).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        """The generator's state, for a run's checkpoint (plain values: no pickle)."""
        return {"rng": dict(self._rng.bit_generator.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]

    def reset(self) -> None:
        """Nothing to forget between episodes (kept so noises are interchangeable)."""


class OrnsteinUhlenbeckNoise:
    """Temporally correlated noise, ``dx = theta (mu - x) dt + sigma sqrt(dt) N(0, 1)``,
    which explores in smooth sweeps rather than jitter (Lillicrap et al. 2016). Its
    stationary standard deviation is about ``sigma / sqrt(2 theta)``.
    """

    def __init__(
        self,
        size: int | Sequence[int],
        theta: float = 0.15,
        sigma: float = 0.2,
        mu: float = 0.0,
        dt: float = 1e-2,
        seed: int | None = None,
    ):
        if theta <= 0 or sigma < 0 or dt <= 0:
            raise ValueError(f"need theta > 0, sigma >= 0, dt > 0; got {theta}, {sigma}, {dt}")
        self.size, self.theta, self.sigma, self.mu, self.dt = size, theta, sigma, mu, dt
        self._rng = np.random.default_rng(seed)
        self.state = np.full(size, mu, dtype=np.float64)

    def state_dict(self) -> dict[str, Any]:
        """The generator's state and the process's, for a run's checkpoint."""
        state = torch.from_numpy(self.state.copy())
        return {"rng": dict(self._rng.bit_generator.state), "x": state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]
        self.state = state["x"].numpy().astype(np.float64).reshape(self.state.shape)

    def sample(self) -> np.ndarray:
        drift = self.theta * (self.mu - self.state) * self.dt
        shock = self.sigma * np.sqrt(self.dt) * self._rng.standard_normal(self.state.shape)
        self.state = self.state + drift + shock
        return self.state.astype(np.float32)

    def reset(self) -> None:
        """Start the next episode from the mean."""
        self.state = np.full(self.size, self.mu, dtype=np.float64)
