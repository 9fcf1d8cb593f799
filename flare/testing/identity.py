"""Identity environments: the observation says which action is right.

They are the smallest problems an RL algorithm can be asked to learn: no credit
assignment over time, no exploration problem, a known best return. An algorithm that
learns anything at all learns them in seconds, so a test can train one to a stated return
quickly (``tests/test_identity_learning.py`` does so for every algorithm of the zoo).

Both envs play episodes of exactly ``episode_length`` steps, each ended by a time-out
(never a game over: nothing is won or lost, and learning bootstraps through it). The
targets are drawn from a generator seeded by ``seed``, so a seeded run is repeatable.
"""

from __future__ import annotations

import numpy as np

from flare.framework.env import ALIVE, ActionDict, Env, ObservationDict, RewardDict
from flare.framework.env_spec import ArraySpec, Continuous, EnvSpec


class _FixedLengthEnv(Env):
    """What both envs share: a seeded target per step, a time-out after a fixed length."""

    def __init__(self, episode_length: int, seed: int | None) -> None:
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.episode_length = episode_length
        self.rng = np.random.default_rng(seed)
        self.steps = 0
        self._over = True

    def _draw_target(self) -> None:
        raise NotImplementedError

    def _observation(self) -> ObservationDict:
        raise NotImplementedError

    def _reward(self, actions: ActionDict) -> float:
        raise NotImplementedError

    def reset(self) -> ObservationDict:
        self.steps, self._over = 0, False
        self._draw_target()
        return self._observation()

    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        if self._over:
            raise RuntimeError(
                f"{type(self).__name__}.step() called before reset() or after the episode ended"
            )
        reward = 0.0
        for _ in range(actrep):
            reward += self._reward(actions)
            self.steps += 1
            self._draw_target()
            if self.steps >= self.episode_length:
                self._over = True
                break
        return self._observation(), {"reward": np.array([reward], dtype=np.float32)}, ALIVE

    def time_out(self) -> bool:
        return self._over


class IdentityEnv(_FixedLengthEnv):
    """Pick the action the observation names.

    Observation ``sensor``: a one-hot vector of ``num_actions`` (float32) marking the right
    action, drawn uniformly at random each step. Action ``action``: one of
    ``num_actions``. Reward ``reward``: ``hit_reward`` (1) for the right action, else
    ``miss_reward`` (0; -1 gives rewards of both signs, as a reward-prediction task needs).

    With ``delayed_reward``, each step pays for the previous step's action instead (the
    first step pays 0), and the observation has one more entry, 1 when the previous action
    was right: the reward is then a function of the observation the step starts from, as
    algorithms that model the reward of a state alone need (successor features' ``phi(s)
    . w``), and the action still decides the next reward.

    Returns: the best is ``episode_length * hit_reward`` (one step less when delayed);
    acting uniformly at random scores that many steps times ``(hit_reward + (num_actions
    - 1) * miss_reward) / num_actions`` on average (see ``chance_return``).
    """

    def __init__(
        self,
        num_actions: int = 4,
        episode_length: int = 10,
        seed: int | None = None,
        hit_reward: float = 1.0,
        miss_reward: float = 0.0,
        delayed_reward: bool = False,
    ) -> None:
        if num_actions < 2:
            raise ValueError(f"num_actions must be >= 2, got {num_actions}")
        super().__init__(episode_length, seed)
        self.num_actions = num_actions
        self.hit_reward, self.miss_reward = hit_reward, miss_reward
        self.delayed_reward = delayed_reward
        self.target = 0
        self.pending: float | None = None  # delayed: what the next step pays

    def chance_return(self) -> float:
        """The mean return of a policy that acts uniformly at random."""
        per_step = (self.hit_reward + (self.num_actions - 1) * self.miss_reward) / self.num_actions
        return (self.episode_length - self.delayed_reward) * per_step

    def reset(self) -> ObservationDict:
        self.pending = None
        return super().reset()

    def _draw_target(self) -> None:
        self.target = int(self.rng.integers(self.num_actions))

    def _observation(self) -> ObservationDict:
        sensor = np.zeros(self.observation_dims()["sensor"], dtype=np.float32)
        sensor[self.target] = 1.0
        if self.delayed_reward and self.pending == self.hit_reward:
            sensor[-1] = 1.0
        return {"sensor": sensor}

    def _reward(self, actions: ActionDict) -> float:
        action = int(np.asarray(actions["action"]).reshape(-1)[0])
        if not 0 <= action < self.num_actions:
            raise ValueError(f"IdentityEnv action must be in [0, {self.num_actions}), got {action}")
        earned = self.hit_reward if action == self.target else self.miss_reward
        if not self.delayed_reward:
            return earned
        paid, self.pending = self.pending or 0.0, earned
        return paid

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        return {"sensor": (self.num_actions + self.delayed_reward,)}

    def action_dims(self) -> dict[str, int]:
        return {"action": self.num_actions}


class ContinuousIdentityEnv(_FixedLengthEnv):
    """Output the point the observation shows.

    Observation ``sensor``: a target drawn uniformly from ``[-1, 1]^action_size``
    (float32) each step. Action ``action``: a vector of ``action_size`` in ``[-1, 1]``
    (clipped to the bounds). Reward ``reward``: minus the Euclidean distance from the
    action to the target.

    Returns: the best is 0; acting uniformly at random scores ``-2/3`` a step on average
    with ``action_size=1``, always acting 0 scores ``-1/2`` a step (see ``chance_return``).
    """

    def __init__(
        self, action_size: int = 1, episode_length: int = 10, seed: int | None = None
    ) -> None:
        if action_size < 1:
            raise ValueError(f"action_size must be >= 1, got {action_size}")
        super().__init__(episode_length, seed)
        self.action_size = action_size
        self.target = np.zeros(action_size, dtype=np.float32)

    def chance_return(self, samples: int = 100_000) -> float:
        """The mean return of a policy that acts uniformly at random in the bounds
        (estimated from ``samples`` seeded draws; exactly -2/3 a step for one dimension)."""
        rng = np.random.default_rng(0)
        targets = rng.uniform(-1, 1, (samples, self.action_size))
        actions = rng.uniform(-1, 1, (samples, self.action_size))
        return -self.episode_length * float(np.linalg.norm(actions - targets, axis=1).mean())

    def _draw_target(self) -> None:
        self.target = self.rng.uniform(-1.0, 1.0, self.action_size).astype(np.float32)

    def _observation(self) -> ObservationDict:
        return {"sensor": self.target.copy()}

    def _reward(self, actions: ActionDict) -> float:
        action = np.asarray(actions["action"], dtype=np.float32).reshape(-1)
        if action.shape != (self.action_size,):
            raise ValueError(
                f"ContinuousIdentityEnv action must have {self.action_size} values, "
                f"got shape {action.shape}"
            )
        return -float(np.linalg.norm(np.clip(action, -1.0, 1.0) - self.target))

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        return {"sensor": (self.action_size,)}

    def action_dims(self) -> dict[str, int]:
        return {"action": self.action_size}

    def spec(self) -> EnvSpec:
        bounds = Continuous((-1.0,) * self.action_size, (1.0,) * self.action_size)
        return EnvSpec(
            observations=(ArraySpec("sensor", np.dtype(np.float32), (self.action_size,)),),
            actions=(ArraySpec("action", np.dtype(np.float32), (self.action_size,), bounds),),
            max_episode_steps=self.episode_length,
        )
