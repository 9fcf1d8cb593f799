"""Distributional Q-learning: C51, QR-DQN and IQN on ``SimpleModelQ``'s ``value_at``.

All three learn the distribution of the return of each action instead of its mean, act
greedily (epsilon-greedy) on the mean, bootstrap from the target network's distribution
of the next state's best action (picked by the online model, as in double DQN), and
return a per-sample ``priority`` (the sample's loss) for prioritized replay.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import torch
import torch.nn.functional as F

from flare.algorithm_zoo.distributional import categorical_projection, quantile_huber_loss
from flare.algorithm_zoo.value_based import ValueBasedAlgorithm
from flare.framework.algorithm import Model, TensorDict


class PointValueModel(Protocol):
    """What the distributional algorithms need of a model besides ``Model``'s API
    (``SimpleModelQ`` has it)."""

    def value_at(
        self, inputs: TensorDict, states: TensorDict, points: torch.Tensor
    ) -> torch.Tensor: ...


def _value_at(
    model: Model, inputs: TensorDict, states: TensorDict, points: torch.Tensor
) -> torch.Tensor:
    """``model.value_at(inputs, states, points)``: ``[B, N, A]``. ``_Distributional``'s
    ``__init__`` checks that the model has it (its type, ``Model``, does not declare it; a
    model need not subclass one)."""
    return cast(PointValueModel, model).value_at(inputs, states, points)


def _pick(per_action: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """``[B, N, A]`` outputs and ``[B, 1]`` actions -> ``[B, N]`` outputs of those actions."""
    index = action.view(-1, 1, 1).expand(-1, per_action.size(1), 1)
    return per_action.gather(2, index).squeeze(2)


class _Distributional(ValueBasedAlgorithm):
    """Keyword arguments besides each algorithm's own are ``ValueBasedAlgorithm``'s."""

    def __init__(self, model: Model, **kwargs: Any) -> None:
        if not hasattr(model, "value_at"):
            raise TypeError(
                f"{type(self).__name__} needs a model with value_at(inputs, states, points) "
                f"(e.g. SimpleModelQ); {type(model).__name__} has none"
            )
        super().__init__(model, **kwargs)

    def next_best_action(self, next_inputs: TensorDict, next_states: TensorDict) -> torch.Tensor:
        return self.q_values(self.model, next_inputs, next_states).argmax(dim=1, keepdim=True)


class C51(_Distributional):
    """Categorical DQN (Bellemare et al. 2017): a softmax over ``num_atoms`` fixed returns
    ``v_min .. v_max``, trained by cross-entropy against the Bellman-shifted, projected
    target distribution. The model's outputs at the atoms' positions are the logits."""

    def __init__(
        self,
        model: Model,
        v_min: float,
        v_max: float,
        num_atoms: int = 51,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        if not v_min < v_max:
            raise ValueError(f"v_min must be below v_max, got {v_min}, {v_max}")
        if num_atoms < 2:
            raise ValueError(f"num_atoms must be >= 2, got {num_atoms}")
        self.atoms = torch.linspace(v_min, v_max, num_atoms, device=self.device)
        self.points = torch.linspace(0.0, 1.0, num_atoms, device=self.device)

    def log_probs(self, model: Model, inputs: TensorDict, states: TensorDict) -> torch.Tensor:
        """``[B, num_atoms, A]`` log-probabilities of each atom for each action."""
        return F.log_softmax(_value_at(model, inputs, states, self.points), dim=1)

    def q_values(self, model: Model, inputs: TensorDict, states: TensorDict) -> torch.Tensor:
        probs = self.log_probs(model, inputs, states).exp()
        return (probs * self.atoms.view(1, -1, 1)).sum(dim=1)

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
        log_p = _pick(self.log_probs(self.model, inputs, states), actions["action"])
        with torch.no_grad():
            best = self.next_best_action(next_inputs, next_states)
            next_probs = _pick(self.log_probs(self.target_model, next_inputs, next_states), best)
            target = categorical_projection(
                next_probs.exp(), self.atoms, rewards["reward"], self.bootstrap(next_alive)
            )
        cost = -(target * log_p).sum(dim=1, keepdim=True)
        return {"cost": cost, "priority": cost.detach()}


class _Quantile(_Distributional):
    """Shared by QR-DQN and IQN: the quantile Huber loss against target quantiles."""

    kappa: float

    def quantile_cost(
        self,
        quantiles: torch.Tensor,
        taus: torch.Tensor,
        next_inputs: TensorDict,
        next_states: TensorDict,
        next_alive: TensorDict,
        rewards: TensorDict,
        target_points: torch.Tensor,
    ) -> TensorDict:
        with torch.no_grad():
            best = self.next_best_action(next_inputs, next_states)
            next_q = _pick(
                _value_at(self.target_model, next_inputs, next_states, target_points), best
            )
            targets = rewards["reward"] + self.bootstrap(next_alive) * next_q
        cost = quantile_huber_loss(quantiles, taus, targets, self.kappa)
        return {"cost": cost, "priority": cost.detach()}


class QRDQN(_Quantile):
    """Quantile-regression DQN (Dabney et al. 2018): the values at ``num_quantiles`` fixed
    fractions ``(2i + 1) / 2N``, trained with the quantile Huber loss; Q is their mean."""

    def __init__(
        self,
        model: Model,
        num_quantiles: int = 32,
        kappa: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        if num_quantiles < 1 or kappa < 0:
            raise ValueError("num_quantiles must be >= 1 and kappa >= 0")
        self.kappa = kappa
        self.taus = (torch.arange(num_quantiles, device=self.device) + 0.5) / num_quantiles

    def q_values(self, model: Model, inputs: TensorDict, states: TensorDict) -> torch.Tensor:
        return _value_at(model, inputs, states, self.taus).mean(dim=1)

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
        quantiles = _pick(_value_at(self.model, inputs, states, self.taus), actions["action"])
        return self.quantile_cost(
            quantiles, self.taus, next_inputs, next_states, next_alive, rewards, self.taus
        )


class IQN(_Quantile):
    """Implicit quantile networks (Dabney et al. 2018b): the values at fractions sampled
    afresh from U(0, 1) for every sample, ``num_taus`` for the prediction and
    ``num_target_taus`` for the target; acting uses the mean over ``num_policy_taus``."""

    def __init__(
        self,
        model: Model,
        num_taus: int = 8,
        num_target_taus: int = 8,
        num_policy_taus: int = 32,
        kappa: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        if min(num_taus, num_target_taus, num_policy_taus) < 1 or kappa < 0:
            raise ValueError("the numbers of fractions must be >= 1 and kappa >= 0")
        self.num_taus = num_taus
        self.num_target_taus = num_target_taus
        self.num_policy_taus = num_policy_taus
        self.kappa = kappa

    def _sample_taus(self, batch: int, num: int) -> torch.Tensor:
        return torch.rand(batch, num, device=self.device)

    def q_values(self, model: Model, inputs: TensorDict, states: TensorDict) -> torch.Tensor:
        batch = next(iter(inputs.values())).size(0)
        taus = self._sample_taus(batch, self.num_policy_taus)
        return _value_at(model, inputs, states, taus).mean(dim=1)

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
        batch = actions["action"].size(0)
        taus = self._sample_taus(batch, self.num_taus)
        quantiles = _pick(_value_at(self.model, inputs, states, taus), actions["action"])
        target_taus = self._sample_taus(batch, self.num_target_taus)
        return self.quantile_cost(
            quantiles, taus, next_inputs, next_states, next_alive, rewards, target_taus
        )
