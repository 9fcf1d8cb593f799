"""A successor-feature model (Kulkarni et al. 2016; Barreto et al. 2017): state features
``phi(s)``, successor features ``psi(s, a)`` for every action, reward weights ``w`` with
``r ~ phi(s) . w``, and ``Q(s, a) = psi(s, a) . w``.

Separating ``psi`` (what the agent will see) from ``w`` (what it is paid for) is the point:
a new reward only needs a new ``w``. An optional decoder rebuilds the observation from
``phi`` (Kulkarni et al.'s auxiliary task), for rewards that say little about the state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from flare.framework.algorithm import Model, TensorDict
from flare.framework.specs import SpecList
from flare.model_zoo.simple_models import _output_size


class SimpleModelSR(Model):
    """A perception net with heads for ``phi`` and ``psi``, reward weights ``w`` and,
    optionally, a decoder from ``phi`` back to the observation.

    ``psi`` reads the perception net's features, not ``phi``: ``phi`` is shaped by its own
    losses (the reward, the reconstruction) and by the body it shares with ``psi``, and
    the TD loss of ``psi`` cannot shrink it to make its own targets trivial.

    Args:
        dims: the shape of the observation named ``sensor_name`` (``"sensor"`` unless told).
        num_actions: the number of discrete actions.
        perception_net: maps a ``[B, *dims]`` batch to ``[B, features]``.
        feature_dim: the width of ``phi`` and of each action's ``psi``.
        reconstruct: add the decoder that ``reconstruct`` uses.
    """

    def __init__(
        self,
        dims: Sequence[int],
        num_actions: int,
        perception_net: nn.Module,
        feature_dim: int = 16,
        reconstruct: bool = False,
        sensor_name: str = "sensor",
    ) -> None:
        super().__init__()
        self.sensor_name = sensor_name
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {feature_dim}")
        self.dims = tuple(int(d) for d in dims)
        self.num_actions = num_actions
        self.feature_dim = feature_dim
        self.perception_net = perception_net
        hidden = _output_size(perception_net, self.dims)
        self.phi_head = nn.Linear(hidden, feature_dim)
        self.psi_head = nn.Linear(hidden, num_actions * feature_dim)
        self.reward_weights = nn.Parameter(torch.zeros(feature_dim))
        self.decoder = nn.Linear(feature_dim, math.prod(self.dims)) if reconstruct else None

    def get_input_specs(self) -> SpecList:
        return [(self.sensor_name, dict(shape=self.dims))]

    def get_action_specs(self) -> SpecList:
        return [("action", dict(shape=[1], dtype="int64"))]

    def successor(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        """``phi`` ``[B, d]``, ``psi`` ``[B, num_actions, d]`` and ``reward_weights`` ``[d]``."""
        features = self.perception_net(inputs[self.sensor_name])
        phi = self.phi_head(features)
        psi = self.psi_head(features).reshape(-1, self.num_actions, self.feature_dim)
        return {"phi": phi, "psi": psi, "reward_weights": self.reward_weights}, states

    def reconstruct(self, phi: torch.Tensor) -> TensorDict:
        """The observation rebuilt from ``phi``, by input name (``sensor_name``: ``[B, *dims]``)."""
        if self.decoder is None:
            raise RuntimeError("this SimpleModelSR was built with reconstruct=False")
        return {self.sensor_name: self.decoder(phi).reshape(-1, *self.dims)}

    def value(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        """``q_value`` ``[B, num_actions]``: ``psi(s, a) . w``."""
        out, next_states = self.successor(inputs, states)
        return {"q_value": out["psi"] @ out["reward_weights"]}, next_states
