"""Agents with one ComputationTask named "RL"."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flare.framework.agent import Agent, StateDict
from flare.framework.env import ActionDict, ObservationDict, RewardDict


def _identity(x: np.ndarray) -> np.ndarray:
    return x


class SimpleRLAgent(Agent):
    """Uses and learns one RL policy, on- or off-policy depending on its helper.

    Args:
        num_games: games to play.
        actrep: action repeat passed to the env.
        learning: store experiences and learn.
        reward_shaping_f: applied to each reward vector before it is stored for learning
            (the returns that are logged stay unshaped).
    """

    def __init__(
        self,
        num_games: int,
        actrep: int = 1,
        learning: bool = True,
        reward_shaping_f: Callable[[np.ndarray], np.ndarray] = _identity,
    ) -> None:
        super().__init__(num_games, actrep, learning)
        self.reward_shaping_f = reward_shaping_f

    def _cts_predict(
        self, observations: ObservationDict, states: StateDict
    ) -> tuple[ActionDict, StateDict]:
        return self.predict("RL", observations, states)

    def _cts_store_data(
        self,
        observations: ObservationDict,
        actions: ActionDict,
        states: StateDict,
        rewards: RewardDict,
    ) -> None:
        shaped = {k: self.reward_shaping_f(np.asarray(v)) for k, v in rewards.items()}
        self._store_data("RL", {**observations, **actions, **states, **shaped})


class SimpleRNNRLAgent(SimpleRLAgent):
    """A ``SimpleRLAgent`` with short-term memory: each episode starts from the RL model's
    initial states (zeros), the states each prediction returns are carried to the next
    step, and every step is stored with the states it was taken from.

    Args: as ``SimpleRLAgent``.
    """

    def _get_init_states(self) -> StateDict:
        return self.init_states("RL")
