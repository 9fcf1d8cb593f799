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
        # one pass for the policy and the value (a model sharing its body runs it once)
        dists, values, _ = self.model.policy_and_value(inputs, states)
        value = values["v_value"]
        if value.shape != reward.shape:
            raise ValueError(
                f"v_value {tuple(value.shape)} and reward {tuple(reward.shape)} must have "
                "the same shape"
            )
        with torch.no_grad():
            weight = bootstrap_weight(next_alive["alive"])
            next_value = self._next_values(
                value.detach(), inputs, next_inputs, states, next_states, weight
            )
            next_value = next_value * weight
        td_error = reward + self.discount_factor * next_value - value
        value_cost = td_error.pow(2)
        pg_cost = -action_log_prob(dists["action"], action) * td_error.detach()
        cost = self.value_cost_weight * value_cost + pg_cost
        if self.entropy_weight:
            cost = cost - self.entropy_weight * joint_entropy(dists, cost.shape[0])
        # the parts, for monitoring only (detached: the optimizer minimises ``cost``). The
        # critic's squared TD error falls as it learns; the policy term's sign follows the
        # TD errors', so ``cost`` itself need not.
        return {"cost": cost, "value_cost": value_cost.detach(), "policy_cost": pg_cost.detach()}

    def _next_values(
        self,
        value: torch.Tensor,
        inputs: TensorDict,
        next_inputs: TensorDict,
        states: TensorDict,
        next_states: TensorDict,
        weight: torch.Tensor,
    ) -> torch.Tensor:
        """V(s') under the weights that gave ``value``: a row whose next step is the
        batch's next row (a rollout's steps in order) takes that row's value, a game
        over needs none, and the model runs only on the rest (for a pixel CNN, one
        forward pass over a fifth of the batch instead of all of it)."""
        rows = value.shape[0]
        follows = _next_is_following_row(next_inputs, inputs, value) & _next_is_following_row(
            next_states, states, value
        )
        next_value = torch.zeros_like(value)
        next_value[:-1][follows] = value[1:][follows]
        needed = weight.reshape(rows, -1).ne(0).any(1)
        needed[:-1] &= ~follows
        if bool(needed.any()):
            picked = needed.nonzero().squeeze(1)
            computed, _ = self.model.value(_take(next_inputs, picked), _take(next_states, picked))
            if computed["v_value"].shape[1:] != value.shape[1:]:
                raise ValueError(
                    f"next v_value {tuple(computed['v_value'].shape)} must have the shape "
                    f"of v_value {tuple(value.shape)} on its rows"
                )
            next_value[picked] = computed["v_value"]
        return next_value


def _next_is_following_row(
    next_batch: TensorDict, batch: TensorDict, value: torch.Tensor
) -> torch.Tensor:
    """``[B - 1]`` bools: row i's next tensors equal row i+1's, every one of them (true
    where there is nothing to compare, as for a model without states)."""
    follows = torch.ones(value.shape[0] - 1, dtype=torch.bool, device=value.device)
    for name, following in next_batch.items():
        same = following[:-1] == batch[name][1:]
        follows &= same.flatten(1).all(1) if same.dim() > 1 else same
    return follows


def _take(batch: TensorDict, rows: torch.Tensor) -> TensorDict:
    return {name: tensor[rows] for name, tensor in batch.items()}
