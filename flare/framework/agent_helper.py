"""AgentHelpers: one ComputationTask's data buffer, sampling schedule and channel for one agent.

The buffers themselves live in ``flare.common.replay_buffers``.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from flare.common.replay_buffers import PrioritizedReplayBuffer, PrioritizedSample, ReplayBuffer
from flare.common.snapshots import (
    experiences_from,
    experiences_state,
    python_random_state,
    set_python_random_state,
)
from flare.framework.batch import ArrayDict, LearnBatch
from flare.framework.cdp_channel import CDPChannel, CDPClosed
from flare.framework.experience import (
    DataKeys,
    Experience,
    sequences_to_batch,
    split_episodes,
)
from flare.framework.outcomes import NextStep
from flare.framework.pipe_messages import LearnReply, LearnRequest, PredictReply, PredictRequest
from flare.framework.specs import ArraySpec


class AgentHelper(ABC):
    """Stores one CT's experiences for one agent and decides when and what to learn from.

    Args:
        name: the ComputationTask's name.
        channel: the link to that CT's ComputationDataProcessor.
        sample_interval: learn once every this many stored experiences.
    """

    def __init__(self, name: str, channel: CDPChannel, sample_interval: int = 5) -> None:
        if sample_interval < 1:
            raise ValueError(f"sample_interval must be >= 1, got {sample_interval}")
        self.name = name
        self.channel = channel
        self.sample_interval = sample_interval
        self.counter = 0
        self.keys = DataKeys((), (), (), ())
        self.rng = random.Random(0)
        self.state_specs: tuple[ArraySpec, ...] = ()
        self.input_specs: tuple[ArraySpec, ...] = ()
        # behavior data of the latest prediction, stored with the step it acted on
        self._behavior: ArrayDict = {}

    def bind(
        self,
        keys: DataKeys,
        seed: int,
        state_specs: Sequence[ArraySpec] = (),
        input_specs: Sequence[ArraySpec] = (),
    ) -> None:
        """Called by the Manager: the names this CT reads, a per-agent sampling seed, the
        shapes of its model's states (short-term memory) and of the inputs it reads."""
        self.keys = keys
        self.rng = random.Random(seed)
        self.state_specs = tuple(state_specs)
        self.input_specs = tuple(input_specs)

    def initial_states(self) -> ArrayDict:
        """The memory an episode starts with: zeros of each state's shape."""
        return {s.name: np.zeros(s.shape, dtype=s.dtype) for s in self.state_specs}

    def predict(self, inputs: ArrayDict, states: ArrayDict) -> tuple[ArrayDict, ArrayDict]:
        """Batched (``[1, ...]``) inputs in, batched actions and next states out."""
        missing = [k for k in self.keys.inputs if k not in inputs]
        if missing:
            raise KeyError(
                f"CT {self.name!r} needs observations {missing}; the env gave {sorted(inputs)}"
            )
        missing = [k for k in self.keys.states if k not in states]
        if missing:
            raise KeyError(
                f"CT {self.name!r}'s model carries states {list(self.keys.states)} but the "
                f"agent gave {sorted(states)}: start each episode from the helper's "
                "initial_states() and pass on the states predict returns (SimpleRNNRLAgent does)"
            )
        request = PredictRequest(
            inputs={k: inputs[k] for k in self.keys.inputs},
            states={k: states[k] for k in self.keys.states},
        )
        reply = self.channel.request(request)
        assert isinstance(reply, PredictReply)
        self._behavior = {k: v[0] for k, v in reply.behavior.items()}
        return reply.actions, reply.states

    def store_data(self, alive: NextStep, data: ArrayDict) -> ArrayDict | None:
        """Keep one step's data; every ``sample_interval`` steps, learn and return the costs.

        The behavior data of the latest prediction (if the algorithm has any) is stored
        with it, so agents never handle it."""
        if self._behavior:
            data = {**data, **self._behavior}
            self._behavior = {}
        self.add_experience(Experience(data=data, alive=alive))
        self.counter += 1
        if self.counter % self.sample_interval == 0:
            return self.learn()
        return None

    def learn(self) -> ArrayDict | None:
        """Sample experiences, send them to the CDP and wait for the costs."""
        batch = self.make_batch()
        if batch is None:
            return None
        return self.send_learn(batch)

    def send_learn(self, batch: LearnBatch) -> ArrayDict:
        """Learn from ``batch`` (made by ``make_batch``); also how a resumed run re-sends
        the batch that was on its way when the checkpoint was taken."""
        reply = self.channel.request(LearnRequest(batch))
        assert isinstance(reply, LearnReply)
        self.learned(reply.costs)
        return reply.costs

    # ----- checkpoints ----------------------------------------------------------------------
    def state_dict(self, with_buffers: bool = True) -> dict[str, Any]:
        """The helper's counters, random state and (``with_buffers``) the experiences it
        keeps, for a run's checkpoint; plain values and arrays only."""
        return {
            "counter": self.counter,
            "rng": python_random_state(self.rng),
            "behavior": dict(self._behavior),
            "buffers": self.buffers_state() if with_buffers else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.counter = int(state["counter"])
        set_python_random_state(self.rng, state["rng"])
        self._behavior = dict(state["behavior"])
        if state.get("buffers") is not None:
            self.load_buffers_state(state["buffers"])

    def buffers_state(self) -> dict[str, Any]:
        """The experiences kept (none by default)."""
        return {}

    def load_buffers_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional
        """Take back what ``buffers_state`` gave."""

    def make_batch(self) -> LearnBatch | None:
        """The next learning batch, or None when there is nothing to learn from yet."""
        sequences = self.sample_experiences()
        if not sequences:
            return None
        return sequences_to_batch(sequences, self.keys)

    def learned(self, costs: ArrayDict) -> None:  # noqa: B027 - optional hook
        """Called with the per-sample costs of the batch ``make_batch`` gave."""

    def close(self) -> None:
        self.channel.close()

    def interrupt_episode(self) -> None:
        """The current episode ended without a game over or a time-out (its simulator went
        away): what was stored stays, but no transition will leave its last step."""
        self.mark_run_end()

    @abstractmethod
    def mark_run_end(self) -> None:
        """Flag the newest experience as the end of its run."""

    @abstractmethod
    def add_experience(self, experience: Experience) -> None:
        """Record one experience."""

    @abstractmethod
    def sample_experiences(self) -> list[list[Experience]]:
        """Runs of consecutive experiences (within one episode, length >= 2) to learn from."""


class OnlineHelper(AgentHelper):
    """On-policy: learns from exactly the experiences gathered since the last learn.

    The newest experience is kept (unless it ended an episode) so the next batch can
    start with the transition out of it; nothing is learned twice or lost.
    """

    def __init__(self, name: str, channel: CDPChannel, sample_interval: int = 5) -> None:
        super().__init__(name, channel, sample_interval)
        self.buffer: list[Experience] = []

    def add_experience(self, experience: Experience) -> None:
        self.buffer.append(experience)

    def buffers_state(self) -> dict[str, Any]:
        return {"buffer": experiences_state(self.buffer)}

    def load_buffers_state(self, state: dict[str, Any]) -> None:
        self.buffer = experiences_from(state["buffer"])

    def mark_run_end(self) -> None:
        if self.buffer:
            self.buffer[-1] = replace(self.buffer[-1], run_ends=True)

    def sample_experiences(self) -> list[list[Experience]]:
        sequences = split_episodes(self.buffer)
        last = self.buffer[-1] if self.buffer else None
        self.buffer = [last] if last is not None and last.has_successor else []
        return sequences


class ExpReplayHelper(AgentHelper):
    """Off-policy: keeps a replay buffer and learns on samples from it.

    Sampling is uniform, or proportional to priority with ``prioritized=True``; the
    algorithm then must return a per-sample ``priority`` cost (e.g. ``|TD error|``), and
    each sample's costs are scaled by its importance weight.

    With ``sequence_length > 1`` it samples runs of that many consecutive transitions of
    one episode (shorter where the episode ends first): a memory model then replays each
    run from the states stored at its first step and learns through time.

    Args:
        buffer_capacity: experiences kept per agent (oldest dropped first).
        num_experiences: transitions (runs, with ``sequence_length > 1``) per learning batch.
        sample_interval: learn once every this many stored experiences.
        warmup: stored experiences required before the first learn (default ``num_experiences``).
        prioritized: proportional prioritized replay instead of uniform sampling.
        alpha: how much priorities count (0 is uniform).
        beta: importance-weight exponent at the start (1 fully corrects the sampling bias).
        beta_anneal_learns: raise beta linearly to 1 over this many learns (0: keep it).
        sequence_length: transitions per sampled run (uniform sampling only).
    """

    def __init__(
        self,
        name: str,
        channel: CDPChannel,
        buffer_capacity: int,
        num_experiences: int,
        sample_interval: int = 5,
        warmup: int | None = None,
        prioritized: bool = False,
        alpha: float = 0.6,
        beta: float = 0.4,
        beta_anneal_learns: int = 0,
        sequence_length: int = 1,
    ) -> None:
        super().__init__(name, channel, sample_interval)
        if num_experiences < 1:
            raise ValueError(f"num_experiences must be >= 1, got {num_experiences}")
        if sequence_length < 1:
            raise ValueError(f"sequence_length must be >= 1, got {sequence_length}")
        if prioritized and sequence_length > 1:
            raise ValueError(
                "prioritized replay samples single transitions: use sequence_length=1 with "
                "prioritized=True, or uniform sampling for runs"
            )
        if not 0 <= beta <= 1:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        if beta_anneal_learns < 0:
            raise ValueError(f"beta_anneal_learns must be >= 0, got {beta_anneal_learns}")
        self.replay_buffer = (
            PrioritizedReplayBuffer(buffer_capacity, alpha)
            if prioritized
            else ReplayBuffer(buffer_capacity)
        )
        self.num_experiences = num_experiences
        self.sequence_length = sequence_length
        self.warmup = num_experiences if warmup is None else warmup
        self.beta = beta
        self.beta_anneal_learns = beta_anneal_learns
        self.num_learns = 0
        self._sampled_slots: np.ndarray | None = None

    @property
    def current_beta(self) -> float:
        if not self.beta_anneal_learns:
            return self.beta
        progress = min(1.0, self.num_learns / self.beta_anneal_learns)
        return self.beta + (1.0 - self.beta) * progress

    def add_experience(self, experience: Experience) -> None:
        self.replay_buffer.add(experience)

    def state_dict(self, with_buffers: bool = True) -> dict[str, Any]:
        sampled = self._sampled_slots
        return {
            **super().state_dict(with_buffers),
            "num_learns": self.num_learns,
            "sampled_slots": None if sampled is None else np.asarray(sampled),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.num_learns = int(state["num_learns"])
        self._sampled_slots = state["sampled_slots"]

    def buffers_state(self) -> dict[str, Any]:
        return {"replay": self.replay_buffer.state_dict()}

    def load_buffers_state(self, state: dict[str, Any]) -> None:
        self.replay_buffer.load_state_dict(state["replay"])

    def mark_run_end(self) -> None:
        self.replay_buffer.mark_newest_run_end()

    def _ready(self) -> bool:
        return len(self.replay_buffer) >= max(self.warmup, 2)

    def sample_experiences(self) -> list[list[Experience]]:
        if not self._ready():
            return []
        return self.replay_buffer.sample(self.num_experiences, self.rng, self.sequence_length)

    def make_batch(self) -> LearnBatch | None:
        buffer = self.replay_buffer
        if not isinstance(buffer, PrioritizedReplayBuffer):
            return super().make_batch()
        if not self._ready():
            return None
        sample = buffer.sample_prioritized(self.num_experiences, self.rng, self.current_beta)
        if sample is None:
            return None
        self._sampled_slots = sample.slots
        batch = sequences_to_batch(sample.sequences, self.keys)
        return replace(batch, sample_weights=sample.weights)

    def learned(self, costs: ArrayDict) -> None:
        self.num_learns += 1
        buffer = self.replay_buffer
        if not isinstance(buffer, PrioritizedReplayBuffer) or self._sampled_slots is None:
            return
        if "priority" not in costs:
            raise KeyError(
                f"CT {self.name!r}: prioritized replay needs the algorithm's learn() to return "
                f"a per-sample 'priority' (e.g. |TD error|); it returned {sorted(costs)}"
            )
        buffer.update_priorities(self._sampled_slots, costs["priority"])
        self._sampled_slots = None


def batch_of_one(data: ArrayDict) -> ArrayDict:
    """Add a leading batch axis of size 1 to every array."""
    return {k: np.asarray(v)[None] for k, v in data.items()}


def unbatch_one(data: ArrayDict) -> ArrayDict:
    return {k: v[0] for k, v in data.items()}


__all__: Sequence[str] = (
    "AgentHelper",
    "CDPChannel",
    "CDPClosed",
    "ExpReplayHelper",
    "OnlineHelper",
    # re-exported from flare.common.replay_buffers, where they live
    "PrioritizedReplayBuffer",
    "PrioritizedSample",
    "ReplayBuffer",
)
