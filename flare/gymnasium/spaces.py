"""Gymnasium spaces from a FLARE spec, and the conversions between their values.

One observation is its own space, several a ``Dict``; the same for actions. A continuous
array with bounds is a ``Box`` of those bounds; a discrete or language array is a
``MultiDiscrete`` (token ids of a vocabulary); a discrete action of shape [1], FLARE's
convention for "one choice of n", is a ``Discrete(n)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from flare.framework.env_spec import ArraySpec, Continuous, Discrete, EnvSpec, Language


def array_space(spec: ArraySpec, action: bool = False) -> spaces.Space:
    """The space of one array of the spec."""
    dtype = np.dtype(spec.dtype)
    kind = spec.kind
    if dtype == np.dtype(object):
        raise ValueError(f"{spec.name!r}: string arrays have no gymnasium space here")
    if isinstance(kind, Discrete):
        if action and spec.shape == (1,):
            return spaces.Discrete(kind.num_values)
        return spaces.MultiDiscrete(np.full(spec.shape, kind.num_values), dtype=dtype)
    if isinstance(kind, Language):
        return spaces.MultiDiscrete(np.full(spec.shape, kind.vocabulary_size), dtype=dtype)
    if isinstance(kind, Continuous):
        low = np.asarray(kind.low, np.float64).reshape(spec.shape)
        high = np.asarray(kind.high, np.float64).reshape(spec.shape)
        return spaces.Box(low.astype(dtype), high.astype(dtype), spec.shape, dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return spaces.Box(info.min, info.max, spec.shape, dtype)
    if dtype == np.dtype(np.bool_):
        return spaces.MultiBinary(list(spec.shape))
    return spaces.Box(-np.inf, np.inf, spec.shape, dtype)


def _space_of(specs: Sequence[ArraySpec], action: bool) -> spaces.Space:
    if len(specs) == 1:
        return array_space(specs[0], action)
    return spaces.Dict({s.name: array_space(s, action) for s in specs})


def observation_space(spec: EnvSpec) -> spaces.Space:
    return _space_of(spec.observations, action=False)


def action_space(spec: EnvSpec) -> spaces.Space:
    return _space_of(spec.actions, action=True)


class Converter:
    """Between a FLARE env's dicts of named arrays and a gymnasium env's values."""

    def __init__(self, spec: EnvSpec) -> None:
        self.spec = spec
        self._observations = [s.name for s in spec.observations]
        self._actions = list(spec.actions)
        self._reward = spec.reward_names[0] if spec.reward_names else None

    def observation(self, observations: dict[str, np.ndarray]) -> Any:
        if len(self._observations) == 1:
            return observations[self._observations[0]]
        return {name: observations[name] for name in self._observations}

    def actions(self, action: Any) -> dict[str, np.ndarray]:
        """A gymnasium action (a Dict's values by name) as the spec's named arrays."""
        if len(self._actions) == 1:
            values = {self._actions[0].name: action}
        else:
            values = dict(action)
        return {s.name: np.asarray(values[s.name], s.dtype).reshape(s.shape) for s in self._actions}

    def reward(self, rewards: dict[str, np.ndarray]) -> float:
        """The first reward signal, summed (a vector signal's parts add up)."""
        if self._reward is None or self._reward not in rewards:
            return 0.0
        return float(np.sum(rewards[self._reward]))
