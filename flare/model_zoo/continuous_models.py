"""Models for one bounded continuous action: a deterministic actor with a Q critic (DDPG)
and a Gaussian policy with a state-value critic (on-policy actor-critic).

Both read one flat observation (``sensor`` unless told otherwise) and write one float32
``action`` of shape ``[d]`` with bounds ``[low, high]``; the bounds live in the model (as
buffers), so an algorithm can clip to them and a checkpoint carries them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.distributions import Distribution, Independent, Normal

from flare.framework.algorithm import Model, TensorDict
from flare.framework.specs import SpecList


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of the given widths with ``activation`` between them (none at the end)."""
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least an input and an output width, got {sizes}")
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class BoundedActionModel(Model):
    """The specs and bounds both continuous models share.

    Args:
        dims: the shape of the observation named ``sensor_name`` (``"sensor"`` unless told),
            flattened for the MLPs.
        action_low, action_high: the action's bounds, one per dimension.
    """

    action_low: torch.Tensor  # buffers, registered in __init__
    action_high: torch.Tensor

    def __init__(
        self,
        dims: Sequence[int],
        action_low: Sequence[float],
        action_high: Sequence[float],
        sensor_name: str = "sensor",
    ) -> None:
        super().__init__()
        self.sensor_name = sensor_name
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float32).reshape(-1))
        high = torch.as_tensor(np.asarray(action_high, dtype=np.float32).reshape(-1))
        if low.shape != high.shape or low.numel() == 0:
            raise ValueError(f"action bounds differ in shape: {tuple(low)} and {tuple(high)}")
        finite = bool(torch.isfinite(low).all() and torch.isfinite(high).all())
        if not finite or not bool((low < high).all()):
            raise ValueError(f"need finite bounds with low < high, got {tuple(low)}, {tuple(high)}")
        self.dims = tuple(int(d) for d in dims)
        self.obs_size = int(np.prod(self.dims))
        self.action_size = int(low.numel())
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)

    @property
    def action_center(self) -> torch.Tensor:
        return (self.action_high + self.action_low) / 2

    @property
    def action_half_range(self) -> torch.Tensor:
        return (self.action_high - self.action_low) / 2

    def get_input_specs(self) -> SpecList:
        return [(self.sensor_name, dict(shape=self.dims))]

    def get_action_specs(self) -> SpecList:
        return [("action", dict(shape=[self.action_size], dtype="float32"))]

    def _flat(self, inputs: TensorDict) -> torch.Tensor:
        return inputs[self.sensor_name].reshape(-1, self.obs_size)


class SimpleModelDeterministic(BoundedActionModel):
    """DDPG's pair: an actor ``mu(s)`` squashed into the bounds by tanh, and a critic
    ``Q(s, a)``. They share no layer, so each can have its own optimizer settings.

    Args:
        hidden: widths of both networks' hidden layers.
    """

    def __init__(
        self,
        dims: Sequence[int],
        action_low: Sequence[float],
        action_high: Sequence[float],
        hidden: Sequence[int] = (64, 64),
        sensor_name: str = "sensor",
    ) -> None:
        super().__init__(dims, action_low, action_high, sensor_name)
        self.actor_net = mlp([self.obs_size, *hidden, self.action_size])
        self.critic_net = mlp([self.obs_size + self.action_size, *hidden, 1])

    def actor(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        """The deterministic action ``mu(s)``, inside the bounds."""
        squashed = torch.tanh(self.actor_net(self._flat(inputs)))
        return {"action": self.action_center + self.action_half_range * squashed}, states

    def critic(
        self, inputs: TensorDict, actions: TensorDict, states: TensorDict
    ) -> tuple[TensorDict, TensorDict]:
        """``{"q_value": [B, 1]}``; the action is rescaled to [-1, 1] before it goes in."""
        scaled = (actions["action"] - self.action_center) / self.action_half_range
        features = torch.cat([self._flat(inputs), scaled], dim=-1)
        return {"q_value": self.critic_net(features)}, states

    def value(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        """The value of acting greedily: ``Q(s, mu(s))``."""
        actions, _ = self.actor(inputs, states)
        return self.critic(inputs, actions, states)

    def actor_parameters(self) -> Iterator[nn.Parameter]:
        return self.actor_net.parameters()

    def critic_parameters(self) -> Iterator[nn.Parameter]:
        return self.critic_net.parameters()


class SimpleModelGaussian(BoundedActionModel):
    """A diagonal Gaussian policy and a state-value critic, in separate networks.

    The mean and standard deviation are learned in units of the action's half-range (so
    ``init_log_std=0`` starts with a standard deviation of half the range). The mean is
    not squashed: samples may leave the bounds, and the algorithm clips what the env gets.

    Args:
        hidden: widths of both networks' hidden layers.
        init_log_std: the initial log standard deviation, in half-range units.
        state_dependent_std: a log-std head on the policy net instead of one free parameter
            per dimension.
    """

    MIN_LOG_STD, MAX_LOG_STD = -5.0, 2.0

    def __init__(
        self,
        dims: Sequence[int],
        action_low: Sequence[float],
        action_high: Sequence[float],
        hidden: Sequence[int] = (64, 64),
        init_log_std: float = 0.0,
        state_dependent_std: bool = False,
        sensor_name: str = "sensor",
    ) -> None:
        super().__init__(dims, action_low, action_high, sensor_name)
        self.state_dependent_std = state_dependent_std
        outputs = 2 * self.action_size if state_dependent_std else self.action_size
        self.policy_net = mlp([self.obs_size, *hidden, outputs], nn.Tanh)
        self.value_net = mlp([self.obs_size, *hidden, 1], nn.Tanh)
        if state_dependent_std:
            self.log_std = None
            with torch.no_grad():  # start every state at init_log_std
                last = self.policy_net[-1]
                assert isinstance(last, nn.Linear)
                last.weight[self.action_size :].zero_()
                last.bias[self.action_size :].fill_(init_log_std)
        else:
            self.log_std = nn.Parameter(torch.full((self.action_size,), float(init_log_std)))

    def policy(
        self, inputs: TensorDict, states: TensorDict
    ) -> tuple[dict[str, Distribution], TensorDict]:
        out = self.policy_net(self._flat(inputs))
        if self.log_std is None:
            mean, log_std = out.split(self.action_size, dim=-1)
        else:
            mean, log_std = out, self.log_std.expand_as(out)
        log_std = log_std.clamp(self.MIN_LOG_STD, self.MAX_LOG_STD)
        loc = self.action_center + self.action_half_range * mean
        scale = self.action_half_range * log_std.exp()
        return {"action": Independent(Normal(loc, scale), 1)}, states

    def value(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        return {"v_value": self.value_net(self._flat(inputs))}, states
