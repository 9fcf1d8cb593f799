"""One Q model for every value-based algorithm: DQN, SARSA, C51, QR-DQN and IQN.

Switching among them changes the Algorithm only. The model gives plain Q-values and,
for the distributional algorithms, one output per action at any points ``tau`` in
[0, 1]: each algorithm decides what the points are and what the outputs mean
(C51: logits of its atoms; QR-DQN: values at fixed quantile fractions; IQN: values at
sampled ones). The points enter as an implicit-quantile embedding (Dabney et al. 2018):
``cos(pi i tau)`` features, a linear layer and a ReLU, multiplied into the body's
features before the shared Q head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from flare.framework.algorithm import Model, TensorDict
from flare.framework.specs import SpecList
from flare.model_zoo.simple_models import _output_size


class SimpleModelQ(Model):
    """A perception net, a Q head and an embedding of return-distribution points.

    Args:
        dims: the shape of the observation named ``sensor_name`` (``"sensor"`` unless told).
        num_actions: the number of discrete actions.
        perception_net: maps a ``[B, *dims]`` batch to ``[B, features]``.
        embedding_dim: cosine features of each point ``tau``.
    """

    frequencies: torch.Tensor  # a buffer, registered in __init__

    def __init__(
        self,
        dims: Sequence[int],
        num_actions: int,
        perception_net: nn.Module,
        embedding_dim: int = 64,
        sensor_name: str = "sensor",
    ) -> None:
        super().__init__()
        self.sensor_name = sensor_name
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        self.dims = tuple(int(d) for d in dims)
        self.num_actions = num_actions
        self.perception_net = perception_net
        hidden = _output_size(perception_net, self.dims)
        self.q_head = nn.Linear(hidden, num_actions)
        self.point_embedding = nn.Sequential(nn.Linear(embedding_dim, hidden), nn.ReLU())
        self.register_buffer("frequencies", torch.arange(1, embedding_dim + 1) * torch.pi)

    def get_input_specs(self) -> SpecList:
        return [(self.sensor_name, dict(shape=self.dims))]

    def get_action_specs(self) -> SpecList:
        return [("action", dict(shape=[1], dtype="int64"))]

    def value(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        """``q_value``: ``[B, num_actions]``."""
        return {"q_value": self.q_head(self.perception_net(inputs[self.sensor_name]))}, states

    def value_at(
        self, inputs: TensorDict, states: TensorDict, points: torch.Tensor
    ) -> torch.Tensor:
        """One output per action at each point: ``points`` ``[B, N]`` or ``[N]`` in [0, 1]
        give ``[B, N, num_actions]``."""
        features = self.perception_net(inputs[self.sensor_name])  # [B, H]
        if points.dim() == 1:
            points = points.expand(features.size(0), -1)
        embedded = self.point_embedding(torch.cos(points.unsqueeze(-1) * self.frequencies))
        return self.q_head(features.unsqueeze(1) * embedded)  # [B, N, A]
