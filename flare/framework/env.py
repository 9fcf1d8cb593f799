"""The one interface an agent sees of its environment.

``GymEnv`` and ``GymEnvImage`` live in ``flare.env_zoo.gym_env`` and are importable from
here too, as in the original FLARE.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from flare.framework.env_spec import ArraySpec, Discrete, EnvSpec
from flare.framework.outcomes import GameOutcome

ObservationDict = dict[str, np.ndarray]
ActionDict = dict[str, Any]
RewardDict = dict[str, np.ndarray]

# The original FLARE's names for ``GameOutcome``'s values.
ALIVE = GameOutcome.ALIVE
SUCCESS = GameOutcome.SUCCESS
FAILURE = GameOutcome.FAILURE


class EnvInterrupted(Exception):
    """The episode cannot go on for a reason outside the game (e.g. its simulator died).

    An agent drops the episode without storing a false game over and starts the next
    one; ``reset()`` is expected to recover (a RemoteEnv reconnects) or to fail for good.
    """


class Env(ABC):
    """An environment: a dict of named observations in, a dict of named actions out.

    ``step`` returns ``(observations, rewards, game_over)``: rewards map names to vectors
    and ``game_over`` is a ``GameOutcome`` (0 alive, 1 success, -1 failure). A time-out is
    never a game over: it is reported by ``time_out()`` so that learning bootstraps
    through it.
    """

    @abstractmethod
    def reset(self) -> ObservationDict:
        """Start a new episode and return its first observations."""

    @abstractmethod
    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        """Apply the actions ``actrep`` times (summing rewards, stopping at an episode end)."""

    @abstractmethod
    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        """The shape of each observation, by name."""

    @abstractmethod
    def action_dims(self) -> dict[str, int]:
        """Per action name: the number of values (discrete), the vector length (continuous)
        or the vocabulary size (language)."""

    @abstractmethod
    def time_out(self) -> bool:
        """Whether the last step ended the episode by its step limit (not a game over)."""

    def spec(self) -> EnvSpec:
        """The typed spec a simulator server publishes.

        By default: float32 observations of ``observation_dims()`` and, for each entry of
        ``action_dims()``, a discrete int64 action of shape [1]. Override it for other
        dtypes, continuous or language actions, more reward signals or a step limit.
        """
        return EnvSpec(
            observations=tuple(
                ArraySpec(name, np.dtype(np.float32), tuple(shape))
                for name, shape in self.observation_dims().items()
            ),
            actions=tuple(
                ArraySpec(name, np.dtype(np.int64), (1,), Discrete(int(n)))
                for name, n in self.action_dims().items()
            ),
        )

    def episode_start(self) -> dict[str, Any] | None:
        """Before ``reset()``: what ``reset_from`` needs to start the same episode again
        (e.g. the state of the env's random generator), plain values only; None when the
        env cannot (a resumed run then drops the episode it was in: not exact, not lost).
        """
        return None

    def reset_from(self, start: dict[str, Any]) -> ObservationDict:
        """``reset()`` as it went when ``episode_start()`` returned ``start``."""
        raise NotImplementedError(f"{type(self).__name__} cannot start an episode again")

    def reseed(self, seed: int) -> bool:
        """Make the next ``reset()`` the one a new env built with ``seed`` would start
        with (gymnasium's ``reset(seed=...)``). False when the env cannot: a simulator
        server then builds a new env with that seed instead (correct, only slower)."""
        return False

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the environment's resources."""


def __getattr__(name: str) -> Any:
    # Lazy, so that flare.env_zoo.gym_env can import Env from this module first.
    if name in ("GymEnv", "GymEnvImage"):
        from flare.env_zoo import gym_env

        return getattr(gym_env, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
