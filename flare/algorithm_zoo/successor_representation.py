"""Successor-feature Q-learning (Kulkarni et al. 2016, "Deep Successor Reinforcement
Learning"; Barreto et al. 2017): ``Q(s, a) = psi(s, a) . w``, with ``psi`` learned by TD on
the features ``phi`` and ``w`` by regressing the reward on ``phi``."""

from __future__ import annotations

from typing import Any, Protocol, cast

import torch

from flare.algorithm_zoo.value_based import ValueBasedAlgorithm, td_cost
from flare.framework.algorithm import Model, TensorDict
from flare.framework.outcomes import bootstrap_weight


class SuccessorModel(Protocol):
    """What ``SuccessorRepresentationQ`` needs of a model besides ``Model``'s API
    (``SimpleModelSR`` has it)."""

    def successor(
        self, inputs: TensorDict, states: TensorDict
    ) -> tuple[TensorDict, TensorDict]: ...

    def reconstruct(self, phi: torch.Tensor) -> TensorDict: ...


def _successor_model(model: Model) -> SuccessorModel:
    """``model`` seen as a successor-feature model, as the class doc requires (its type,
    ``Model``, does not declare ``successor``; a model need not subclass one)."""
    return cast(SuccessorModel, model)


def successor_target(
    phi: torch.Tensor, next_psi: torch.Tensor, next_alive: torch.Tensor, discount: float
) -> torch.Tensor:
    """``phi(s) + gamma |alive'| psi(s', a*)``: ``phi`` and ``next_psi`` ``[B, d]``,
    ``next_alive`` ``[B, 1]``. A game over (0) ends the sum of features; a time-out (-1)
    is no end of the task, so it bootstraps like a live step."""
    return phi + discount * bootstrap_weight(next_alive) * next_psi


def select_action_rows(per_action: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """``per_action[b, action[b]]``: ``[B, A, d]`` and ``[B, 1]`` give ``[B, d]``."""
    index = action.unsqueeze(-1).expand(-1, 1, per_action.size(-1))
    return per_action.gather(1, index).squeeze(1)


class SuccessorRepresentationQ(ValueBasedAlgorithm):
    """Q-learning through successor features, acting epsilon-greedily on ``psi . w``.

    Each transition's cost is the sum of

    - the successor TD cost of ``psi(s, a)`` towards
      ``phi(s) + gamma |alive'| psi_target(s', a*)``, averaged over the feature dimensions,
      with ``a*`` greedy under ``Q`` (the model's with ``double_q``, else the target's) and
      ``phi(s)`` the model's own without gradient (the TD loss must not shrink ``phi``);
    - ``reward_cost_weight (phi(s) . w - r)^2``, which fits ``w`` (and ``phi``);
    - optionally, ``reconstruction_cost_weight`` times the squared error of the
      observation rebuilt from ``phi`` (Kulkarni et al.'s decoder), which keeps ``phi``
      informative when the reward is not. Off by default: on CartPole (a reward of 1 at
      every step) it took 1.4 to 3.9 times as many games over four seeds, its gradient
      competing with psi's in the shared body. Without it ``phi`` is shaped by the reward
      loss, on the body that psi's TD loss trains.

    Together, ``psi(s, a) . w -> phi(s) . w + gamma psi(s', a*) . w ~ r + gamma Q(s', a*)``:
    Q-learning, with the reward attributed to the state the step left (exact when the
    reward depends on the state only, as in CartPole).

    The model must provide ``successor()`` (``phi``, ``psi``, ``reward_weights``),
    ``value()`` with a ``q_value`` and, for the reconstruction cost, ``reconstruct(phi)``;
    see ``flare.model_zoo.successor_models.SimpleModelSR``. Returns a ``priority``
    (``|TD error of Q|``) so it works with prioritized replay. Keyword arguments besides
    its own are ``ValueBasedAlgorithm``'s (discount, exploration, target sync, optimizer).
    """

    def __init__(
        self,
        model: Model,
        reward_cost_weight: float = 1.0,
        reconstruction_cost_weight: float = 0.0,
        cost: str = "huber",
        double_q: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        if reward_cost_weight <= 0:
            raise ValueError(
                f"reward_cost_weight must be > 0 (w is learned from it), got {reward_cost_weight}"
            )
        if reconstruction_cost_weight < 0:
            raise ValueError(
                f"reconstruction_cost_weight must be >= 0, got {reconstruction_cost_weight}"
            )
        td_cost(torch.zeros(1), cost)  # fail now on an unknown kind
        self.reward_cost_weight = reward_cost_weight
        self.reconstruction_cost_weight = reconstruction_cost_weight
        self.cost = cost
        self.double_q = double_q

    def q_values(self, model: Model, inputs: TensorDict, states: TensorDict) -> torch.Tensor:
        return model.value(inputs, states)[0]["q_value"]

    @torch.no_grad()
    def next_successor(self, next_inputs: TensorDict, next_states: TensorDict) -> torch.Tensor:
        """``psi_target(s', a*)`` ``[B, d]``, with ``a*`` greedy under Q."""
        target, _ = _successor_model(self.target_model).successor(next_inputs, next_states)
        chooser = self.model if self.double_q else self.target_model
        best = self.q_values(chooser, next_inputs, next_states).argmax(dim=1, keepdim=True)
        return select_action_rows(target["psi"], best)

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
        model = _successor_model(self.model)
        out, _ = model.successor(inputs, states)
        phi, weights = out["phi"], out["reward_weights"]
        psi = select_action_rows(out["psi"], actions["action"])
        reward = rewards["reward"]
        target = successor_target(
            phi.detach(),
            self.next_successor(next_inputs, next_states),
            next_alive["alive"],
            self.discount_factor,
        )
        psi_error = target - psi
        psi_cost = td_cost(psi_error, self.cost).mean(dim=-1, keepdim=True)
        reward_cost = (phi @ weights).unsqueeze(-1).sub(reward).pow(2)
        cost = psi_cost + self.reward_cost_weight * reward_cost
        costs = {"psi_cost": psi_cost.detach(), "reward_cost": reward_cost.detach()}
        if self.reconstruction_cost_weight:
            rebuilt = model.reconstruct(phi)
            reconstruction_cost = sum(
                (rebuilt[k] - inputs[k]).pow(2).reshape(len(phi), -1).mean(-1, keepdim=True)
                for k in rebuilt
            )
            assert isinstance(reconstruction_cost, torch.Tensor)  # one term per observation
            cost = cost + self.reconstruction_cost_weight * reconstruction_cost
            costs["reconstruction_cost"] = reconstruction_cost.detach()
        q_error = (psi_error.detach() @ weights.detach()).unsqueeze(-1)
        return {"cost": cost, **costs, "priority": q_error.abs()}
