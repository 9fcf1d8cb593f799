"""Agents with an RL computation task plus auxiliary ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from flare.agent_zoo.simple_rl_agents import _identity
from flare.framework.agent import Agent, StateDict
from flare.framework.env import ActionDict, ObservationDict, RewardDict
from flare.framework.reports import GameRecord


@dataclass(frozen=True)
class CTCostsGameRecord(GameRecord):
    """A ``GameRecord`` that also holds, per CT and cost name, the mean cost over the
    game's learning steps: ``ct_costs["reward_prediction/cost"]``. ``cost`` stays the RL
    CT's ``cost`` only. (The Manager keeps these records in ``stats`` as they are.)"""

    ct_costs: dict[str, float] = field(default_factory=dict)


class RewardPredictionAgent(Agent):
    """Acts with CT ``rl_ct`` and learns it and an auxiliary reward-prediction CT.

    Every step is stored with both CTs: the RL CT's helper keeps it (rewards shaped by
    ``reward_shaping_f``), the reward-prediction CT's helper (``RewardReplayHelper``)
    keeps it only if its reward is non-zero (unshaped: only its sign matters). Only the
    RL CT is asked for actions.

    The game's ``cost`` (``GameRecord.cost``, the ``cost`` column of ``games.csv``) is the
    RL CT's alone; every CT's costs are in ``CTCostsGameRecord.ct_costs``.

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
        self._ct_costs: dict[str, list[float]] = {}

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

    def _store_data(self, ct_name: str, data: dict[str, Any]) -> dict[str, np.ndarray] | None:
        """Store one step for CT ``ct_name``; keep each CT's costs apart (``Agent``'s own
        would average every CT's ``cost`` into the game's one number)."""
        if not self.learning:
            return None
        arrays = {k: np.asarray(v) for k, v in data.items()}
        costs = self._helper(ct_name).store_data(self.alive, arrays)
        for name, values in (costs or {}).items():
            mean = float(np.mean(values))
            self._ct_costs.setdefault(f"{ct_name}/{name}", []).append(mean)
            if ct_name == self.rl_ct and name == "cost":
                self._game_costs.append(mean)
        return costs

    def _reset_env(self) -> ObservationDict:
        self._ct_costs = {}
        return super()._reset_env()

    def _run_one_episode(self) -> GameRecord:
        record = super()._run_one_episode()
        return CTCostsGameRecord(
            **{f.name: getattr(record, f.name) for f in fields(GameRecord)},
            ct_costs={k: float(np.mean(v)) for k, v in self._ct_costs.items()},
        )
