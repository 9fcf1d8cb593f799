"""Simple algorithms from the original FLARE."""

from __future__ import annotations

import torch

from flare.algorithm_zoo.policies import action_log_prob, joint_entropy
from flare.framework.algorithm import Algorithm, Model, OptimSetting, TensorDict
from flare.framework.outcomes import bootstrap_weight


class SimpleAC(Algorithm):
    """One-step advantage actor-critic (Sutton & Barto, ch. 13.5) with a shared model.

    cost = value_cost_weight * td_error^2 - log pi(a|s) * td_error
    - entropy_weight * entropy(pi(.|s)), where td_error = r + discount * |alive'| * V(s')
    - V(s). A time-out (alive' = -1) bootstraps; a game over (alive' = 0) does not. The
    entropy term (off by default, as in the original) keeps the policy exploring.

    The model must provide ``policy()`` with an ``action`` distribution and ``value()``
    with a ``v_value``. Besides ``cost`` it returns its parts ``value_cost`` (td_error^2)
    and ``policy_cost``, detached, for monitoring.
    """

    def __init__(
        self,
        model: Model,
        gpu_id: int = -1,
        discount_factor: float = 0.99,
        value_cost_weight: float = 1.0,
        optim: OptimSetting | None = None,
        grad_clip: float | None = None,
        entropy_weight: float = 0.0,
    ) -> None:
        super().__init__(model, gpu_id=gpu_id, optim=optim, grad_clip=grad_clip)
        if not 0.0 <= discount_factor <= 1.0:
            raise ValueError(f"discount_factor must be in [0, 1], got {discount_factor}")
        if entropy_weight < 0:
            raise ValueError(f"entropy_weight must be >= 0, got {entropy_weight}")
        self.discount_factor = discount_factor
        self.value_cost_weight = value_cost_weight
        self.entropy_weight = entropy_weight

    def predict(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        return self._rl_predict(self.model, inputs, states)

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
        action = actions["action"]
        reward = rewards["reward"]
        values, _ = self.model.value(inputs, states)
        value = values["v_value"]
        with torch.no_grad():
            next_values, _ = self.model.value(next_inputs, next_states)
            next_value = next_values["v_value"] * bootstrap_weight(next_alive["alive"])
        if value.shape != next_value.shape or value.shape != reward.shape:
            raise ValueError(
                f"v_value {tuple(value.shape)}, next v_value {tuple(next_value.shape)} and "
                f"reward {tuple(reward.shape)} must have the same shape"
            )
        td_error = reward + self.discount_factor * next_value - value
        value_cost = td_error.pow(2)
        dists, _ = self.model.policy(inputs, states)
        pg_cost = -action_log_prob(dists["action"], action) * td_error.detach()
        cost = self.value_cost_weight * value_cost + pg_cost
        if self.entropy_weight:
            cost = cost - self.entropy_weight * joint_entropy(dists, cost.shape[0])
        # the parts, for monitoring only (detached: the optimizer minimises ``cost``). The
        # critic's squared TD error falls as it learns; the policy term's sign follows the
        # TD errors', so ``cost`` itself need not.
        return {"cost": cost, "value_cost": value_cost.detach(), "policy_cost": pg_cost.detach()}
