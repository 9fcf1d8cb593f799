"""Off-policy actor-critic from replayed experience with truncated importance weights
(Off-PAC, Degris et al. 2012, with the truncation of ACER / V-trace)."""

from __future__ import annotations

import copy
from typing import Any

import torch

from flare.algorithm_zoo.policies import (
    BEHAVIOR_LOG_PROB,
    joint_entropy,
    joint_log_prob,
    sample_actions,
)
from flare.algorithm_zoo.target_networks import soft_update
from flare.framework.algorithm import Algorithm, Model, OptimSetting, TensorDict
from flare.framework.outcomes import bootstrap_weight
from flare.framework.specs import SpecList


def truncated_importance_weights(
    log_prob: torch.Tensor, behavior_log_prob: torch.Tensor, truncation: float
) -> torch.Tensor:
    """``min(c, pi(a|s) / mu(a|s))``, without gradient: a weight on the sample, not a path
    for the policy gradient. Truncating keeps the variance bounded when ``pi`` has moved
    far from the policy ``mu`` that acted (old samples in the replay buffer)."""
    return torch.exp(log_prob - behavior_log_prob).clamp(max=truncation).detach()


class OffPolicyAC(Algorithm):
    """Actor-critic that learns from any replayed transitions (use it with
    ``ExpReplayHelper``).

    The policy that acted, ``mu``, is the model's policy at acting time: ``predict``
    returns ``log mu(a|s)`` next to the action, so it is stored with the step and the
    ratio ``pi / mu`` is exact however old the sample is. With the truncated weight
    ``rho = min(c, pi(a|s) / mu(a|s))`` and the TD error
    ``delta = r + gamma |alive'| V(s') - V(s)`` each sample costs

        value_cost_weight * rho * delta^2  -  rho * delta * log pi(a|s)
        - entropy_weight * H(pi(.|s))

    The critic's gradient moves ``V(s)`` towards ``V(s) + rho delta`` (V-trace's one-step
    target), whose fixed point with ``c = inf`` is ``V^pi``; the actor's is Off-PAC's
    ``rho delta grad log pi``. With ``c = 1`` both are biased towards ``mu`` where ``pi``
    prefers an action more than ``mu`` did, the price of bounded variance. ``V(s')``
    comes from a Polyak-averaged target copy with ``target_tau``, else from the model.

    The model must provide ``policy()`` and ``value()`` with a ``v_value``. Returns a
    ``priority`` (``|rho delta|``) so it works with prioritized replay.

    Args:
        discount_factor: gamma.
        truncation: ``c``, the largest importance weight.
        value_cost_weight, entropy_weight: weights of the critic and entropy terms.
        target_tau: move a target copy of the model towards it by ``tau`` every learn and
            bootstrap from it; ``None`` bootstraps from the model itself.
    """

    def __init__(
        self,
        model: Model,
        gpu_id: int = -1,
        discount_factor: float = 0.99,
        truncation: float = 1.0,
        value_cost_weight: float = 0.5,
        entropy_weight: float = 0.0,
        target_tau: float | None = None,
        optim: OptimSetting | None = None,
        grad_clip: float | None = None,
    ) -> None:
        super().__init__(model, gpu_id=gpu_id, optim=optim, grad_clip=grad_clip)
        if not 0.0 <= discount_factor <= 1.0:
            raise ValueError(f"discount_factor must be in [0, 1], got {discount_factor}")
        if truncation <= 0:
            raise ValueError(f"truncation must be > 0, got {truncation}")
        if value_cost_weight < 0 or entropy_weight < 0:
            raise ValueError("value_cost_weight and entropy_weight must be >= 0")
        if target_tau is not None and not 0 < target_tau <= 1:
            raise ValueError(f"target_tau must be in (0, 1], got {target_tau}")
        self.discount_factor = discount_factor
        self.truncation = truncation
        self.value_cost_weight = value_cost_weight
        self.entropy_weight = entropy_weight
        self.target_tau = target_tau
        self.target_model = (
            copy.deepcopy(self.model).requires_grad_(False) if target_tau is not None else None
        )

    def get_behavior_specs(self) -> SpecList:
        return [(BEHAVIOR_LOG_PROB, dict(shape=[1]))]

    def predict(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        dists, next_states = self.model.policy(inputs, states)
        actions = sample_actions(dists)
        return {**actions, BEHAVIOR_LOG_PROB: joint_log_prob(dists, actions)}, next_states

    def learn(
        self,
        inputs: TensorDict,
        next_inputs: TensorDict,
        states: TensorDict,
        next_states: TensorDict,
        next_alive: TensorDict,
        actions: TensorDict,
        next_actions: TensorDict,
        rewards: TensorDict,
    ) -> TensorDict:
        dists, values, _ = self.model.policy_and_value(inputs, states)
        value = values["v_value"]
        reward = rewards["reward"]
        with torch.no_grad():
            bootstrap_model = self.target_model if self.target_model is not None else self.model
            next_value = bootstrap_model.value(next_inputs, next_states)[0]["v_value"]
        if not value.shape == next_value.shape == reward.shape:
            raise ValueError(
                f"v_value {tuple(value.shape)}, next v_value {tuple(next_value.shape)} and "
                f"reward {tuple(reward.shape)} must have the same shape"
            )
        td_error = (
            reward
            + self.discount_factor * bootstrap_weight(next_alive["alive"]) * next_value
            - value
        )
        log_prob = joint_log_prob(dists, actions)
        rho = truncated_importance_weights(log_prob, actions[BEHAVIOR_LOG_PROB], self.truncation)
        value_cost = rho * td_error.pow(2)
        policy_cost = -rho * td_error.detach() * log_prob
        entropy = joint_entropy(dists, value.shape[0])
        cost = policy_cost + self.value_cost_weight * value_cost - self.entropy_weight * entropy
        return {
            "cost": cost,
            "policy_cost": policy_cost.detach(),
            "value_cost": value_cost.detach(),
            "entropy": entropy.detach(),
            "importance_weight": rho,
            "priority": (rho * td_error).detach().abs(),
        }

    def update(self, **kwargs: Any) -> TensorDict:
        costs = super().update(**kwargs)
        if self.target_model is not None:
            assert self.target_tau is not None
            soft_update(self.target_model, self.model, self.target_tau)
        return costs

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.target_model is not None:
            state["target_model"] = self.target_model.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.target_model is not None and "target_model" in state:
            self.target_model.load_state_dict(state["target_model"])
