"""Small deterministic environments whose every step is known in advance."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from flare.framework.env import (
    ALIVE,
    FAILURE,
    SUCCESS,
    ActionDict,
    Env,
    ObservationDict,
    RewardDict,
)


class ChainEnv(Env):
    """Walk along a chain: observation ``sensor`` = [position]; reward 1 per step.

    Action 1 moves right, 0 stays. Reaching ``goal`` is a success; ``fail_at`` (if set) is a
    failure when reached; after ``max_steps`` steps the episode times out.
    """

    def __init__(self, goal: int = 1000, max_steps: int = 10, fail_at: int | None = None) -> None:
        self.goal, self.max_steps, self.fail_at = goal, max_steps, fail_at
        self.position = 0
        self.steps = 0
        self._timed_out = False

    def reset(self) -> ObservationDict:
        self.position, self.steps, self._timed_out = 0, 0, False
        return {"sensor": np.array([self.position], dtype=np.float32)}

    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        reward = 0.0
        game_over = ALIVE
        for _ in range(actrep):
            self.position += int(np.asarray(actions["action"]).reshape(-1)[0])
            self.steps += 1
            reward += 1.0
            if self.position >= self.goal:
                game_over = SUCCESS
            elif self.fail_at is not None and self.position >= self.fail_at:
                game_over = FAILURE
            if game_over != ALIVE:
                break
            if self.steps >= self.max_steps:
                self._timed_out = True
                break
        obs = {"sensor": np.array([self.position], dtype=np.float32)}
        return obs, {"reward": np.array([reward], dtype=np.float32)}, game_over

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        return {"sensor": (1,)}

    def action_dims(self) -> dict[str, int]:
        return {"action": 2}

    def time_out(self) -> bool:
        return self._timed_out


class CrashingEnv(ChainEnv):
    """A ChainEnv whose ``step`` raises after ``crash_after`` steps (to test failure paths)."""

    def __init__(self, crash_after: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.crash_after = crash_after
        self.total_steps = 0

    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        self.total_steps += 1
        if self.total_steps > self.crash_after:
            raise RuntimeError(f"simulated simulator crash at step {self.total_steps}")
        return super().step(actions, actrep)


class PatternImageEnv(gym.Env):
    """A Gymnasium env with RGB frames: frame t is filled with the value ``10 * t``.

    Registered as ``flare/PatternImage-v0`` so ``GymEnvImage`` can build it by name.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, height: int = 48, width: int = 64, episode_length: int = 20) -> None:
        self.height, self.width, self.episode_length = height, width, episode_length
        self.observation_space = spaces.Box(0, 255, (height, width, 3), dtype=np.uint8)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def _frame(self) -> np.ndarray:
        return np.full((self.height, self.width, 3), min(10 * self.t, 255), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action: int):
        self.t += 1
        terminated = self.t >= self.episode_length
        return self._frame(), 1.0, terminated, False, {}


if "flare/PatternImage-v0" not in gym.registry:
    gym.register("flare/PatternImage-v0", entry_point="flare.testing.envs:PatternImageEnv")
