"""Q-learning (DQN) and SARSA: the same model, two objectives."""

from __future__ import annotations

from typing import Any

import torch

from flare.algorithm_zoo.value_based import ValueBasedAlgorithm, td_cost
from flare.framework.algorithm import Model, TensorDict


class _OneStepQ(ValueBasedAlgorithm):
    """TD learning of ``q_value``; subclasses choose the next action's value.

    ``cost``: ``huber`` or ``mse``; the other keyword arguments are
    ``ValueBasedAlgorithm``'s (discount, exploration, target sync, optimizer...).
    """

    def __init__(self, model: Model, cost: str = "huber", **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        td_cost(torch.zeros(1), cost)  # fail now on an unknown kind
        self.cost = cost

    def q_values(self, model: Model, inputs: TensorDict, states: TensorDict) -> torch.Tensor:
        return model.value(inputs, states)[0]["q_value"]

    def next_value(
        self, next_inputs: TensorDict, next_states: TensorDict, next_actions: TensorDict
    ) -> torch.Tensor:
        """``[B, 1]`` value of the next state that the target bootstraps from."""
        raise NotImplementedError

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
        q = self.q_values(self.model, inputs, states).gather(1, actions["action"])
        with torch.no_grad():
            next_value = self.next_value(next_inputs, next_states, next_actions)
            target = rewards["reward"] + self.bootstrap(next_alive) * next_value
        td_error = target - q
        return {"cost": td_cost(td_error, self.cost), "priority": td_error.detach().abs()}


class SimpleQ(_OneStepQ):
    """DQN (Mnih et al. 2015): ``Q(s, a) -> r + gamma max_a' Q_target(s', a')``, acting
    epsilon-greedily, with a target network.

    With ``double_q`` (van Hasselt et al. 2016) the online model picks ``a'`` and the
    target evaluates it, which curbs the max's overestimation.

    The model must provide ``value()`` with a ``q_value`` of ``[B, num_actions]``.
    Returns a ``priority`` (``|TD error|``) so it works with prioritized replay.
    """

    def __init__(
        self, model: Model, double_q: bool = True, cost: str = "huber", **kwargs: Any
    ) -> None:
        super().__init__(model, cost=cost, **kwargs)
        self.double_q = double_q

    def next_value(
        self, next_inputs: TensorDict, next_states: TensorDict, next_actions: TensorDict
    ) -> torch.Tensor:
        target_q = self.q_values(self.target_model, next_inputs, next_states)
        if not self.double_q:
            return target_q.max(dim=1, keepdim=True).values
        best = self.q_values(self.model, next_inputs, next_states).argmax(dim=1, keepdim=True)
        return target_q.gather(1, best)


class SimpleSARSA(_OneStepQ):
    """SARSA: ``Q(s, a) -> r + gamma Q_target(s', a')`` with ``a'`` the action the agent
    really took next (stored with the transition), so it learns the value of the policy
    that acts, exploration included, rather than of the greedy one.

    The same model as ``SimpleQ``; only the bootstrap differs. It learns from either
    helper; from replay, the stored ``a'`` comes from a slightly older policy (the
    CartPole example uses replay: on-line updates from 8 agents' consecutive steps
    were too correlated to learn there).
    """

    def next_value(
        self, next_inputs: TensorDict, next_states: TensorDict, next_actions: TensorDict
    ) -> torch.Tensor:
        target_q = self.q_values(self.target_model, next_inputs, next_states)
        return target_q.gather(1, next_actions["action"])
