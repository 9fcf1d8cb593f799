"""Agents with an RL computation task plus auxiliary ones."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flare.agent_zoo.simple_rl_agents import _identity
from flare.framework.agent import Agent, StateDict
from flare.framework.env import ActionDict, ObservationDict, RewardDict


class RewardPredictionAgent(Agent):
    """Acts with CT ``rl_ct`` and learns it and an auxiliary reward-prediction CT.

    Every step is stored with both CTs: the RL CT's helper keeps it (rewards shaped by
    ``reward_shaping_f``), the reward-prediction CT's helper (``RewardReplayHelper``)
    keeps it only if its reward is non-zero (unshaped: only its sign matters). Only the
    RL CT is asked for actions.

    Every CT's costs of a game are in its ``GameRecord.costs`` (``"RL/cost"``,
    ``"reward_prediction/cost"``, ...); ``GameRecord.cost`` is the RL CT's when it comes
    first in ``ct_settings``.

    Args:
        num_games, actrep, learning: as for ``Agent``.
        reward_shaping_f: applied to each reward vector stored for the RL CT.
        rl_ct: the name of the RL CT in ``ct_settings``.
        aux_ct: the name of the reward-prediction CT.
    """

    def __init__(
        self,
        num_games: int,
        actrep: int = 1,
        learning: bool = True,
        reward_shaping_f: Callable[[np.ndarray], np.ndarray] = _identity,
        rl_ct: str = "RL",
        aux_ct: str = "reward_prediction",
    ) -> None:
        super().__init__(num_games, actrep, learning)
        if rl_ct == aux_ct:
            raise ValueError(f"rl_ct and aux_ct must differ, both are {rl_ct!r}")
        self.reward_shaping_f = reward_shaping_f
        self.rl_ct = rl_ct
        self.aux_ct = aux_ct

    def _cts_predict(
        self, observations: ObservationDict, states: StateDict
    ) -> tuple[ActionDict, StateDict]:
        return self.predict(self.rl_ct, observations, states)

    def _cts_store_data(
        self,
        observations: ObservationDict,
        actions: ActionDict,
        states: StateDict,
        rewards: RewardDict,
    ) -> None:
        shaped = {k: self.reward_shaping_f(np.asarray(v)) for k, v in rewards.items()}
        self._store_data(self.rl_ct, {**observations, **actions, **states, **shaped})
        self._store_data(self.aux_ct, {**observations, **actions, **rewards})
