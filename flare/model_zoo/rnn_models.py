"""Models with short-term memory: a perception net, a GRU cell carried across steps, heads.

The memory is one state, ``state`` (``[hidden_size]``): the GRU's hidden vector after the
previous step. The agent starts each episode from zeros and passes on what the model
returns; learning recomputes it along each replayed run (``Model.next_states``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.distributions import Distribution

from flare.framework.algorithm import Model, TensorDict
from flare.framework.specs import SpecList
from flare.model_zoo.simple_models import _output_size, categorical

STATE = "state"


class MemoryActorCritic(Model):
    """Policy and value heads (``policy_head``, ``value_head``) that read only the
    memory's new state ``state``: what a memory actor-critic shares, including
    ``heads_from_states``, so PPO reuses the replayed states."""

    policy_head: nn.Module
    value_head: nn.Module

    def policy(
        self, inputs: TensorDict, states: TensorDict
    ) -> tuple[dict[str, Distribution], TensorDict]:
        next_states = self.next_states(inputs, states)
        return {"action": categorical(self.policy_head(next_states[STATE]))}, next_states

    def value(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        next_states = self.next_states(inputs, states)
        return {"v_value": self.value_head(next_states[STATE])}, next_states

    def policy_and_value(
        self, inputs: TensorDict, states: TensorDict
    ) -> tuple[dict[str, Distribution], TensorDict, TensorDict]:
        next_states = self.next_states(inputs, states)
        return (*self._heads(next_states[STATE]), next_states)

    def heads_from_states(
        self, inputs: TensorDict, next_states: TensorDict
    ) -> tuple[dict[str, Distribution], TensorDict]:
        return self._heads(next_states[STATE])

    def _heads(self, memory: torch.Tensor) -> tuple[dict[str, Distribution], TensorDict]:
        dists: dict[str, Distribution] = {"action": categorical(self.policy_head(memory))}
        return dists, {"v_value": self.value_head(memory)}


class _RecurrentBody(Model):
    """An observation (``sensor_name``) -> perception net -> GRU cell; subclasses add heads."""

    def __init__(
        self,
        dims: Sequence[int],
        num_actions: int,
        perception_net: nn.Module,
        hidden_size: int,
        sensor_name: str = "sensor",
    ) -> None:
        super().__init__()
        self.sensor_name = sensor_name
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        if hidden_size < 1:
            raise ValueError(f"hidden_size must be >= 1, got {hidden_size}")
        self.dims = tuple(int(d) for d in dims)
        self.num_actions = num_actions
        self.hidden_size = hidden_size
        self.perception_net = perception_net
        self.cell = nn.GRUCell(_output_size(perception_net, self.dims), hidden_size)

    def get_input_specs(self) -> SpecList:
        return [(self.sensor_name, dict(shape=self.dims))]

    def get_state_specs(self) -> SpecList:
        return [(STATE, dict(shape=[self.hidden_size]))]

    def get_action_specs(self) -> SpecList:
        return [("action", dict(shape=[1], dtype="int64"))]

    def memory_features(self, inputs: TensorDict) -> torch.Tensor:
        return self.perception_net(inputs[self.sensor_name])

    def memory_step(self, features: torch.Tensor, states: TensorDict) -> TensorDict:
        return {STATE: self.cell(features, states[STATE])}


class SimpleRNNModelAC(MemoryActorCritic, _RecurrentBody):
    """Actor-critic with memory: policy and value heads read the GRU's new state.

    Args:
        dims: the shape of the observation named ``sensor_name`` (``"sensor"`` unless told).
        num_actions: the number of discrete actions.
        perception_net: maps a ``[B, *dims]`` batch to ``[B, features]``.
        hidden_size: the memory's width.
    """

    def __init__(
        self,
        dims: Sequence[int],
        num_actions: int,
        perception_net: nn.Module,
        hidden_size: int = 64,
        sensor_name: str = "sensor",
    ) -> None:
        super().__init__(dims, num_actions, perception_net, hidden_size, sensor_name)
        self.policy_head = nn.Linear(hidden_size, num_actions)
        self.value_head = nn.Linear(hidden_size, 1)


class SimpleRNNModelQ(_RecurrentBody):
    """Q-values with memory (a DRQN, Hausknecht & Stone 2015): the Q head reads the GRU's
    new state. Works with SimpleQ and SimpleSARSA.

    Args: as ``SimpleRNNModelAC``.
    """

    def __init__(
        self,
        dims: Sequence[int],
        num_actions: int,
        perception_net: nn.Module,
        hidden_size: int = 64,
        sensor_name: str = "sensor",
    ) -> None:
        super().__init__(dims, num_actions, perception_net, hidden_size, sensor_name)
        self.q_head = nn.Linear(hidden_size, num_actions)

    def value(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        next_states = self.next_states(inputs, states)
        return {"q_value": self.q_head(next_states[STATE])}, next_states


__all__ = ["SimpleRNNModelAC", "SimpleRNNModelQ", "STATE"]
