"""Any FLARE simulator as a ``gymnasium.Env``: one session, spaces from its spec.

``gymnasium.make("flare/Remote-v0", address="127.0.0.1:50051", game_name="CartPole-v1")``
(after ``import flare.gymnasium``) gives an Env that Stable-Baselines3, CleanRL or any
Gymnasium code can train on. ``reset(seed=s)`` sends the seed to the simulator, which
starts the episode a session opened with that seed would start with, so seeded runs
replay exactly.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium

from flare.bridge.client import RemoteEnv
from flare.bridge.farm import Addresses
from flare.gymnasium.spaces import Converter, action_space, observation_space


class RemoteGymEnv(gymnasium.Env):
    """One session on a FLARE simulator (or on a server of a farm), as a Gymnasium Env.

    ``terminated`` is a game over (``info["is_success"]`` says whether it was a success),
    ``truncated`` the simulator's time-out; the reward is the first reward signal (summed
    when it is a vector), and ``info["rewards"]`` holds every signal. Keyword arguments
    other than RemoteEnv's own become the session's config.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, address: Addresses, seed: int | None = None, **config: Any) -> None:
        super().__init__()
        # (a Session stream of its own: the lowest latency for one session)
        self.remote = RemoteEnv(address, seed=seed, batch=False, **config)
        self._convert = Converter(self.remote.spec())
        self.observation_space = observation_space(self.remote.spec())
        self.action_space = action_space(self.remote.spec())

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.remote.reseed(seed)
        return self._convert.observation(self.remote.reset()), {}

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observations, rewards, game_over = self.remote.step(self._convert.actions(action))
        terminated = game_over != 0
        info: dict[str, Any] = {"rewards": rewards}
        if terminated:
            info["is_success"] = game_over == 1
        return (
            self._convert.observation(observations),
            self._convert.reward(rewards),
            terminated,
            self.remote.time_out(),
            info,
        )

    def close(self) -> None:
        self.remote.close()
        super().close()
