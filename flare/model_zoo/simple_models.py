"""Simple models: a perception net followed by small heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.distributions import Categorical, Distribution

from flare.framework.algorithm import Model, TensorDict
from flare.framework.specs import SpecList


def categorical(logits: torch.Tensor) -> Categorical:
    """The policy over discrete actions, without torch's argument checks: they cost a
    fifth of a CartPole prediction, the actions checked are the model's own samples, and
    NaN logits still fail, in sampling."""
    return Categorical(logits=logits, validate_args=False)


def _output_size(net: nn.Module, dims: Sequence[int]) -> int:
    """The perception net's output width, found with one dummy forward pass."""
    with torch.no_grad():
        out = net(torch.zeros(1, *dims))
    if out.dim() != 2:
        raise ValueError(
            f"the perception net must output [batch, features], got shape {tuple(out.shape)}"
        )
    return int(out.size(1))


class SimpleModelAC(Model):
    """Actor-critic for one discrete action: a shared perception net, a policy and a value head.

    Args:
        dims: the shape of the observation it reads.
        num_actions: the number of discrete actions.
        perception_net: maps a ``[B, *dims]`` batch to ``[B, features]``.
        sensor_name: the observation it reads (``"sensor"``, what GymEnv calls it, by default).
    """

    def __init__(
        self,
        dims: Sequence[int],
        num_actions: int,
        perception_net: nn.Module,
        sensor_name: str = "sensor",
    ) -> None:
        super().__init__()
        self.sensor_name = sensor_name
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        self.dims = tuple(int(d) for d in dims)
        self.num_actions = num_actions
        self.perception_net = perception_net
        hidden = _output_size(perception_net, self.dims)
        self.policy_head = nn.Linear(hidden, num_actions)
        self.value_head = nn.Linear(hidden, 1)

    def get_input_specs(self) -> SpecList:
        return [(self.sensor_name, dict(shape=self.dims))]

    def get_action_specs(self) -> SpecList:
        return [("action", dict(shape=[1], dtype="int64"))]

    def policy(
        self, inputs: TensorDict, states: TensorDict
    ) -> tuple[dict[str, Distribution], TensorDict]:
        logits = self.policy_head(self.perception_net(inputs[self.sensor_name]))
        return {"action": categorical(logits)}, states

    def value(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        return {"v_value": self.value_head(self.perception_net(inputs[self.sensor_name]))}, states

    def policy_and_value(
        self, inputs: TensorDict, states: TensorDict
    ) -> tuple[dict[str, Distribution], TensorDict, TensorDict]:
        features = self.perception_net(inputs[self.sensor_name])
        dists: dict[str, Distribution] = {"action": categorical(self.policy_head(features))}
        return dists, {"v_value": self.value_head(features)}, states
