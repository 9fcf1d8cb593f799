"""A small environment whose only reward comes at the end of an episode, +1 or -1.

``CatchEnv`` is the "catch" game of bsuite (Osband et al. 2020, ``bsuite/environments/
catch.py``): rewards are sparse (one non-zero reward per episode, after ``rows - 1``
steps) and of both signs, which is what an auxiliary reward-prediction task needs.
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


class CatchEnv(Env):
    """Catch a falling ball with a paddle.

    A ball starts in a random column of the top row of a ``rows x columns`` board and falls
    one row per step; the paddle sits in the bottom row and moves left (action 0), stays
    (1) or moves right (2). When the ball reaches the bottom row the episode ends: reward
    +1 and a success if the paddle is under it, else -1 and a failure. Every other step
    gives 0, so every episode lasts exactly ``rows - 1`` steps with one non-zero reward.

    Observation ``sensor``: the board flattened row by row (``[rows * columns]``, float32),
    1 where the ball or the paddle is, 0 elsewhere. Action ``action`` (3 values), reward
    ``reward`` (``[1]``). ``seed`` fixes the sequence of ball columns.
    """

    def __init__(self, rows: int = 10, columns: int = 5, seed: int | None = None) -> None:
        if rows < 2:
            raise ValueError(f"rows must be >= 2, got {rows}")
        if columns < 1:
            raise ValueError(f"columns must be >= 1, got {columns}")
        self.rows, self.columns = rows, columns
        self.rng = np.random.default_rng(seed)
        self.ball_row, self.ball_column, self.paddle = 0, 0, columns // 2
        self._over = True

    def _observation(self) -> ObservationDict:
        board = np.zeros((self.rows, self.columns), dtype=np.float32)
        board[self.ball_row, self.ball_column] = 1.0
        board[self.rows - 1, self.paddle] = 1.0
        return {"sensor": board.reshape(-1)}

    def reset(self) -> ObservationDict:
        self.ball_row = 0
        self.ball_column = int(self.rng.integers(self.columns))
        self.paddle = self.columns // 2
        self._over = False
        return self._observation()

    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        if self._over:
            raise RuntimeError("CatchEnv.step() called before reset() or after the game ended")
        move = int(np.asarray(actions["action"]).reshape(-1)[0])
        if move not in (0, 1, 2):
            raise ValueError(f"CatchEnv action must be 0, 1 or 2, got {move}")
        reward, game_over = 0.0, ALIVE
        for _ in range(actrep):
            self.paddle = min(max(self.paddle + move - 1, 0), self.columns - 1)
            self.ball_row += 1
            if self.ball_row == self.rows - 1:
                caught = self.paddle == self.ball_column
                reward += 1.0 if caught else -1.0
                game_over = SUCCESS if caught else FAILURE
                self._over = True
                break
        return self._observation(), {"reward": np.array([reward], dtype=np.float32)}, game_over

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        return {"sensor": (self.rows * self.columns,)}

    def action_dims(self) -> dict[str, int]:
        return {"action": 3}

    def time_out(self) -> bool:
        return False  # every episode ends with the ball on the bottom row
