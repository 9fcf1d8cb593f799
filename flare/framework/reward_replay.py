"""RewardReplayHelper: a replay of rewarding steps only, sampled balanced by the reward's sign.

It feeds an auxiliary reward-prediction task (UNREAL, Jaderberg et al. 2017,
https://arxiv.org/abs/1611.05397): when non-zero rewards are rare, a buffer of every step
would teach a predictor little more than "nothing happens". This helper keeps only the
steps whose reward is non-zero, one ring per sign, and samples each learning batch half
from the negative and half from the positive ring.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from flare.common.snapshots import experiences_from, experiences_state
from flare.framework.agent_helper import AgentHelper, CDPChannel
from flare.framework.batch import ArrayDict, LearnBatch
from flare.framework.experience import Experience

NEGATIVE = 0
POSITIVE = 1
REWARD_CLASSES = (NEGATIVE, POSITIVE)


def reward_class(total_reward: float) -> int | None:
    """The class of a step's summed reward: ``NEGATIVE`` (0), ``POSITIVE`` (1), or None
    for a zero reward (such a step is not stored)."""
    if total_reward > 0:
        return POSITIVE
    if total_reward < 0:
        return NEGATIVE
    return None


class RewardReplayHelper(AgentHelper):
    """Stores one agent's non-zero-reward steps for a reward-prediction CT.

    **What is stored.** Each step the agent offers (everything ``_store_data`` gets: the
    observation the action was taken on, the action, the reward it earned) is kept only
    if its reward, summed over the CT's reward names, is non-zero. Each kept step is one
    sample: the CT learns to predict the sign of that reward from what preceded it. Zero-
    reward steps and the final observation of an episode are dropped.

    **Balanced.** The steps go into two rings by the reward's sign (negative, positive),
    each keeping its newest ``buffer_capacity`` steps, so a frequent class never pushes a
    rare one out. A batch of ``num_experiences`` draws ``num_experiences // 2`` steps from
    each ring, uniformly with replacement; an odd one out comes from a ring picked at
    random. While only one ring holds steps, the whole batch comes from it.

    **Schedule.** Learning is attempted every ``sample_interval`` steps *offered* (stored
    or not), so agents playing in step keep asking their CDP together; it starts once
    ``warmup`` steps (both rings together) are stored.

    Args:
        buffer_capacity: steps kept per reward sign (oldest dropped first).
        num_experiences: steps per learning batch.
        sample_interval: learn once every this many steps offered.
        warmup: rewarding steps required before the first learn (default
            ``num_experiences``).

    The batch it sends holds single steps: ``inputs``, ``actions``, ``states`` and
    ``rewards`` of each step, the ``next_*`` fields repeat them, ``next_alive`` is 0 (no
    transition) and every step is a run of its own (``sequence_lengths`` all 1).
    """

    def __init__(
        self,
        name: str,
        channel: CDPChannel,
        buffer_capacity: int,
        num_experiences: int,
        sample_interval: int = 5,
        warmup: int | None = None,
    ) -> None:
        super().__init__(name, channel, sample_interval)
        for setting, value in (
            ("buffer_capacity", buffer_capacity),
            ("num_experiences", num_experiences),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"CT {name!r}: RewardReplayHelper's {setting} must be an int >= 1, "
                    f"got {value!r}"
                )
        if warmup is not None and (
            not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 1
        ):
            raise ValueError(
                f"CT {name!r}: RewardReplayHelper's warmup must be an int >= 1 or None, "
                f"got {warmup!r}"
            )
        self.buffer_capacity = buffer_capacity
        self.num_experiences = num_experiences
        self.warmup = num_experiences if warmup is None else warmup
        self.rings: dict[int, deque[Experience]] = {
            c: deque(maxlen=buffer_capacity) for c in REWARD_CLASSES
        }

    def buffers_state(self) -> dict[str, Any]:
        return {str(c): experiences_state(list(ring)) for c, ring in self.rings.items()}

    def load_buffers_state(self, state: dict[str, Any]) -> None:
        for c, ring in self.rings.items():
            ring.clear()
            ring.extend(experiences_from(state[str(c)]))

    def __len__(self) -> int:
        """Rewarding steps stored, both signs together."""
        return sum(len(ring) for ring in self.rings.values())

    def class_sizes(self) -> dict[int, int]:
        """Steps stored per reward class (``NEGATIVE``, ``POSITIVE``)."""
        return {c: len(ring) for c, ring in self.rings.items()}

    def _total_reward(self, data: ArrayDict) -> float:
        if not self.keys.rewards:
            raise ValueError(
                f"CT {self.name!r}: RewardReplayHelper needs a model with reward specs"
            )
        missing = [k for k in self.keys.rewards if k not in data]
        if missing:
            raise KeyError(
                f"CT {self.name!r}: the stored step lacks the rewards {missing}; it has "
                f"{sorted(data)}"
            )
        return float(sum(np.sum(data[k]) for k in self.keys.rewards))

    def add_experience(self, experience: Experience) -> None:
        label = reward_class(self._total_reward(experience.data))
        if label is not None:
            self.rings[label].append(experience)

    def mark_run_end(self) -> None:
        """Nothing to do: every stored step is a sample of its own."""

    def sample_steps(self) -> list[Experience]:
        """A balanced batch of stored steps (empty before ``warmup``)."""
        present = [c for c in REWARD_CLASSES if self.rings[c]]
        if len(self) < self.warmup or not present:
            return []
        counts = dict.fromkeys(present, self.num_experiences // len(present))
        for c in self.rng.sample(present, self.num_experiences % len(present)):
            counts[c] += 1
        steps: list[Experience] = []
        for c in present:
            ring = self.rings[c]
            steps.extend(ring[self.rng.randrange(len(ring))] for _ in range(counts[c]))
        return steps

    def sample_experiences(self) -> list[list[Experience]]:
        """The sampled steps, each as a run of one step (no transitions)."""
        return [[step] for step in self.sample_steps()]

    def make_batch(self) -> LearnBatch | None:
        steps = self.sample_steps()
        if not steps:
            return None
        keys = self.keys
        inputs = _stack(steps, keys.inputs, self.name)
        states = _stack(steps, keys.states, self.name)
        actions = _stack(steps, keys.actions + keys.behavior, self.name)
        return LearnBatch(
            inputs=inputs,
            next_inputs=inputs,
            states=states,
            next_states=states,
            next_alive={"alive": np.zeros((len(steps), 1), dtype=np.float32)},
            actions=actions,
            next_actions=actions,
            rewards=_stack(steps, keys.rewards, self.name),
            sequence_lengths=np.ones(len(steps), dtype=np.int64),
        )


def _stack(steps: Sequence[Experience], names: Sequence[str], ct_name: str) -> ArrayDict:
    arrays = {}
    for name in names:
        try:
            arrays[name] = np.stack([np.asarray(step.data[name]) for step in steps])
        except KeyError:
            raise KeyError(
                f"CT {ct_name!r}: the stored step has no {name!r}; it has {sorted(steps[0].data)}"
            ) from None
    return arrays


__all__ = ["NEGATIVE", "POSITIVE", "REWARD_CLASSES", "RewardReplayHelper", "reward_class"]
