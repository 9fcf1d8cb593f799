"""AgentHelpers: one ComputationTask's data buffer, sampling schedule and channel for one agent."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from multiprocessing.connection import Connection

import numpy as np

from flare.framework.batch import (
    AgentDone,
    ArrayDict,
    LearnReply,
    LearnRequest,
    PredictReply,
    PredictRequest,
)
from flare.framework.experience import (
    DataKeys,
    Experience,
    sequences_to_batch,
    split_episodes,
)


class CDPClosed(Exception):
    """The ComputationDataProcessor went away (the run is stopping); the agent should exit."""


class CDPChannel:
    """The agent's end of a pipe to one ComputationDataProcessor: one request, one reply."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def request(self, message: object) -> object:
        try:
            self._conn.send(message)
            return self._conn.recv()
        except (EOFError, OSError, BrokenPipeError) as err:
            raise CDPClosed(str(err)) from None

    def close(self) -> None:
        try:
            self._conn.send(AgentDone())
        except (OSError, BrokenPipeError):
            pass
        self._conn.close()


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

    def bind(self, keys: DataKeys, seed: int) -> None:
        """Called by the Manager: the names this CT reads, and a per-agent sampling seed."""
        self.keys = keys
        self.rng = random.Random(seed)

    def predict(self, inputs: ArrayDict, states: ArrayDict) -> tuple[ArrayDict, ArrayDict]:
        """Batched (``[1, ...]``) inputs in, batched actions and next states out."""
        missing = [k for k in self.keys.inputs if k not in inputs]
        if missing:
            raise KeyError(
                f"CT {self.name!r} needs observations {missing}; the env gave {sorted(inputs)}"
            )
        request = PredictRequest(
            inputs={k: inputs[k] for k in self.keys.inputs},
            states={k: states[k] for k in self.keys.states if k in states},
        )
        reply = self.channel.request(request)
        assert isinstance(reply, PredictReply)
        return reply.actions, reply.states

    def store_data(self, alive: int, data: ArrayDict) -> ArrayDict | None:
        """Keep one step's data; every ``sample_interval`` steps, learn and return the costs."""
        self.add_experience(Experience(data=data, alive=alive))
        self.counter += 1
        if self.counter % self.sample_interval == 0:
            return self.learn()
        return None

    def learn(self) -> ArrayDict | None:
        """Sample experiences, send them to the CDP and wait for the costs."""
        sequences = self.sample_experiences()
        if not sequences:
            return None
        batch = sequences_to_batch(sequences, self.keys)
        reply = self.channel.request(LearnRequest(batch))
        assert isinstance(reply, LearnReply)
        return reply.costs

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

    def mark_run_end(self) -> None:
        if self.buffer:
            self.buffer[-1] = replace(self.buffer[-1], run_ends=True)

    def sample_experiences(self) -> list[list[Experience]]:
        sequences = split_episodes(self.buffer)
        last = self.buffer[-1] if self.buffer else None
        self.buffer = [last] if last is not None and last.has_successor else []
        return sequences


class ReplayBuffer:
    """A fixed-capacity ring of experiences that samples transitions uniformly."""

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError(f"buffer_capacity must be >= 2, got {capacity}")
        self.capacity = capacity
        self._items: list[Experience] = []
        self._start = 0  # physical index of the oldest item once the ring is full

    def __len__(self) -> int:
        return len(self._items)

    def mark_newest_run_end(self) -> None:
        if self._items:
            newest = (self._start - 1) % len(self._items) if len(self) == self.capacity else -1
            self._items[newest] = replace(self._items[newest], run_ends=True)

    def add(self, experience: Experience) -> None:
        if len(self._items) < self.capacity:
            self._items.append(experience)
        else:
            self._items[self._start] = experience
            self._start = (self._start + 1) % self.capacity

    def __getitem__(self, index: int) -> Experience:
        """Logical index: 0 is the oldest experience."""
        return self._items[(self._start + index) % len(self._items)]

    def num_transitions(self) -> int:
        """Experiences that have a successor in the same episode."""
        return sum(1 for i in range(len(self) - 1) if self[i].has_successor)

    def sample(self, num: int, rng: random.Random) -> list[list[Experience]]:
        """``num`` transitions drawn uniformly (with replacement) among valid ones."""
        if len(self) < 2:
            return []
        sequences = []
        attempts = 0
        while len(sequences) < num:
            i = rng.randrange(len(self) - 1)
            if self[i].has_successor:
                sequences.append([self[i], self[i + 1]])
            attempts += 1
            if attempts > 100 * num and not sequences:
                return []
        return sequences


class ExpReplayHelper(AgentHelper):
    """Off-policy: keeps a replay buffer and learns on uniform samples from it.

    Args:
        buffer_capacity: experiences kept per agent (oldest dropped first).
        num_experiences: transitions per learning batch.
        sample_interval: learn once every this many stored experiences.
        warmup: stored experiences required before the first learn (default ``num_experiences``).
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
        if num_experiences < 1:
            raise ValueError(f"num_experiences must be >= 1, got {num_experiences}")
        self.replay_buffer = ReplayBuffer(buffer_capacity)
        self.num_experiences = num_experiences
        self.warmup = num_experiences if warmup is None else warmup

    def add_experience(self, experience: Experience) -> None:
        self.replay_buffer.add(experience)

    def mark_run_end(self) -> None:
        self.replay_buffer.mark_newest_run_end()

    def sample_experiences(self) -> list[list[Experience]]:
        if len(self.replay_buffer) < max(self.warmup, 2):
            return []
        return self.replay_buffer.sample(self.num_experiences, self.rng)


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
    "ReplayBuffer",
)
