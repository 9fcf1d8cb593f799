"""Models of auxiliary tasks that share part of an RL model.

An auxiliary model is built on the RL model's perception net (the same ``nn.Module``
object, so both computation tasks train it), plus a small head of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from flare.framework.algorithm import Model, TensorDict
from flare.framework.reward_replay import REWARD_CLASSES
from flare.framework.specs import SpecList
from flare.model_zoo.simple_models import _output_size


class RewardPredictionModel(Model):
    """Predicts the sign of a step's non-zero reward (UNREAL's reward prediction).

    Reads the observation (``sensor_name``) the action was taken on and, with ``use_action``,
    the discrete ``action`` taken (one-hot); outputs one logit per reward class
    (``flare.framework.reward_replay``: negative, positive). It has no actions: its CT is
    only learned, never asked to act.

    Args:
        dims: the shape of the observation named ``sensor_name`` (``"sensor"`` unless told).
        num_actions: values of the discrete ``action`` (used with ``use_action``).
        perception_net: the RL model's perception net, shared (not copied).
        use_action: also read the action (the reward then follows from the input).
        hidden: width of the head's hidden layer.
    """

    def __init__(
        self,
        dims: Sequence[int],
        num_actions: int,
        perception_net: nn.Module,
        use_action: bool = True,
        hidden: int = 64,
        sensor_name: str = "sensor",
    ) -> None:
        super().__init__()
        self.sensor_name = sensor_name
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        self.dims = tuple(int(d) for d in dims)
        self.num_actions = num_actions
        self.use_action = use_action
        self.perception_net = perception_net
        features = _output_size(perception_net, self.dims)
        width = features + (num_actions if use_action else 0)
        self.reward_head = nn.Sequential(
            nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, len(REWARD_CLASSES))
        )

    def get_input_specs(self) -> SpecList:
        specs: list = [(self.sensor_name, dict(shape=self.dims))]
        if self.use_action:
            specs.append(("action", dict(shape=[1], dtype="int64")))
        return specs

    def get_action_specs(self) -> SpecList:
        return []

    def reward_logits(self, inputs: TensorDict) -> torch.Tensor:
        """``[B, 2]`` logits of the reward's class (negative, positive)."""
        features = self.perception_net(inputs[self.sensor_name])
        if self.use_action:
            action = inputs["action"].reshape(-1).long()
            features = torch.cat([features, F.one_hot(action, self.num_actions).float()], -1)
        return self.reward_head(features)
