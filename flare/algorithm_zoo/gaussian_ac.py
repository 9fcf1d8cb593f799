"""An on-policy actor-critic with a Gaussian policy for bounded continuous actions."""

from __future__ import annotations

from typing import Any

import torch

from flare.algorithm_zoo.policies import joint_log_prob
from flare.algorithm_zoo.ppo import BEHAVIOR_LOG_PROB, PPO
from flare.framework.algorithm import Model, OptimSetting, TensorDict
from flare.framework.specs import SpecList

SAMPLED_ACTION = "sampled_action"


class GaussianAC(PPO):
    """Advantage actor-critic with a Gaussian policy on on-policy runs (use it with
    ``OnlineHelper``), learning from the samples, acting within the bounds.

    Each learn call gets the runs the agents gathered since their last learn; advantages
    come from GAE over each run (bootstrapping through a time-out, never after a game over)
    with the values of the model before the update. Then ``num_epochs`` passes over the
    batch in minibatches step on PPO's clipped objective (the class reuses ``PPO``'s update),
    which keeps the steps on reused samples close to the policy that acted.

    With ``num_epochs=1`` and one minibatch for the whole batch this is A2C: the ratio is 1
    (but for each run's first step, acted before the previous update) and the cost is
    ``-log pi(u|s) A + value_cost_weight (V - G)^2 - entropy_weight H``. On Pendulum (8
    agents) A2C's mean return of 20 games was still about -900 or worse after 100,000 steps;
    10 epochs reach -400 within 11,000-20,000: hence the reuse by default.

    **Bounds.** The Gaussian is unbounded; the env gets the sample clipped to the action's
    bounds, but learning needs the sample itself, ``u``: the log-probability of a clipped
    action is that of another action. ``predict`` therefore returns ``u`` (``sampled_action``)
    and its log-probability as behavior data, stored with the step and never sent to the
    env, and ``update`` scores ``u``.

    The model must provide ``policy()`` with one ``action`` distribution, ``value()`` with a
    ``v_value`` and ``action_low``/``action_high`` bounds (``SimpleModelGaussian`` does).

    Args: those of ``PPO``; the defaults suit Pendulum-like control (Adam, lr 1e-3).
    """

    def __init__(
        self,
        model: Model,
        gpu_id: int = -1,
        discount_factor: float = 0.99,
        gae_lambda: float = 0.95,
        clip_epsilon: float = 0.2,
        num_epochs: int = 10,
        minibatch_size: int = 64,
        normalize_advantages: bool = True,
        value_cost_weight: float = 0.5,
        entropy_weight: float = 0.0,
        optim: OptimSetting | None = None,
        grad_clip: float | None = 0.5,
    ) -> None:
        specs = model.get_action_specs()
        if len(specs) != 1 or specs[0][0] != "action":
            raise ValueError(f"GaussianAC acts on one action named 'action', got {specs}")
        for bound in ("action_low", "action_high"):
            if not isinstance(getattr(model, bound, None), torch.Tensor):
                raise TypeError(f"GaussianAC needs a model with {bound} (see SimpleModelGaussian)")
        self._action_shape = list(specs[0][1]["shape"])  # read by get_behavior_specs
        super().__init__(
            model,
            gpu_id=gpu_id,
            discount_factor=discount_factor,
            gae_lambda=gae_lambda,
            clip_epsilon=clip_epsilon,
            num_epochs=num_epochs,
            minibatch_size=minibatch_size,
            normalize_advantages=normalize_advantages,
            value_cost_weight=value_cost_weight,
            entropy_weight=entropy_weight,
            optim=optim if optim is not None else (torch.optim.Adam, {"lr": 1e-3}),
            grad_clip=grad_clip,
        )

    def get_behavior_specs(self) -> SpecList:
        return [*super().get_behavior_specs(), (SAMPLED_ACTION, dict(shape=self._action_shape))]

    def predict(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        dists, next_states = self.model.policy(inputs, states)
        sample = dists["action"].sample()
        low, high = self.model.action_low, self.model.action_high
        assert isinstance(low, torch.Tensor) and isinstance(high, torch.Tensor)  # see __init__
        action = torch.clamp(sample, low, high)
        log_prob = joint_log_prob(dists, {"action": sample})
        behavior = {SAMPLED_ACTION: sample, BEHAVIOR_LOG_PROB: log_prob}
        return {"action": action, **behavior}, next_states

    def update(self, **batch: Any) -> TensorDict:
        """PPO's update, scoring the unclipped samples instead of the actions the env got."""
        actions = dict(batch.pop("actions"))
        actions["action"] = actions.pop(SAMPLED_ACTION)
        return super().update(actions=actions, **batch)
