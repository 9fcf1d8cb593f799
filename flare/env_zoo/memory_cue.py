"""A memory task: the cue is visible at the first step only, the answer is due at the last.

Observation ``sensor`` is three numbers ``[cue is 0, cue is 1, answer now]``. Step 0 shows
the cue (one of two), the next ``delay`` steps show nothing, and the last step asks for
the answer: choosing the cue's action is a success (+1), the other a failure (-1); actions
before the question are ignored. An agent without memory sees the same blank question
whatever the cue was, so it cannot beat a coin flip (mean return 0); an agent that keeps
the cue in its memory answers every time (mean return 1).
"""

from __future__ import annotations

import numpy as np

from flare.framework.env import (
    ALIVE,
    FAILURE,
    SUCCESS,
    ActionDict,
    Env,
    ObservationDict,
    RewardDict,
)

NUM_CUES = 2


class CueMemoryEnv(Env):
    """Remember a cue over ``delay`` blank steps, then answer it.

    Args:
        delay: blank steps between the cue and the question (episodes last ``delay + 2``
            steps).
        seed: seeds the cues.
    """

    def __init__(self, delay: int = 4, seed: int | None = None) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay}")
        self.delay = int(delay)
        self.rng = np.random.default_rng(seed)
        self.cue = 0
        self.steps = 0

    def _observe(self) -> ObservationDict:
        sensor = np.zeros(NUM_CUES + 1, dtype=np.float32)
        if self.steps == 0:
            sensor[self.cue] = 1.0
        elif self.steps == self.delay + 1:
            sensor[NUM_CUES] = 1.0
        return {"sensor": sensor}

    def reset(self) -> ObservationDict:
        self.cue = int(self.rng.integers(NUM_CUES))
        self.steps = 0
        return self._observe()

    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        del actrep  # one decision per step: repeating would skip the cue or the question
        action = int(np.asarray(actions["action"]).reshape(-1)[0])
        if not 0 <= action < NUM_CUES:
            raise ValueError(f"action must be 0 or 1, got {action}")
        reward, game_over = 0.0, ALIVE
        if self.steps == self.delay + 1:
            game_over = SUCCESS if action == self.cue else FAILURE
            reward = float(game_over)
        self.steps += 1
        return self._observe(), {"reward": np.array([reward], dtype=np.float32)}, game_over

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        return {"sensor": (NUM_CUES + 1,)}

    def action_dims(self) -> dict[str, int]:
        return {"action": NUM_CUES}

    def time_out(self) -> bool:
        return False
