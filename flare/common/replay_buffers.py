"""Replay buffers of experiences: a uniform ring and proportional prioritized replay."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from flare.common.snapshots import experiences_from, experiences_state
from flare.common.sum_tree import PriorityTree
from flare.framework.experience import Experience


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

    def _newest_slot(self) -> int | None:
        """Physical index of the newest experience."""
        if not self._items:
            return None
        return (self._start - 1) % len(self._items) if len(self) == self.capacity else len(self) - 1

    def mark_newest_run_end(self) -> None:
        newest = self._newest_slot()
        if newest is not None:
            self._items[newest] = replace(self._items[newest], run_ends=True)

    def add(self, experience: Experience) -> int:
        """Store an experience (over the oldest one when full); returns its physical slot."""
        if len(self._items) < self.capacity:
            self._items.append(experience)
            return len(self._items) - 1
        slot = self._start
        self._items[slot] = experience
        self._start = (self._start + 1) % self.capacity
        return slot

    def state_dict(self) -> dict[str, Any]:
        """Everything stored, for a run's checkpoint (see ``flare.common.snapshots``)."""
        return {"items": experiences_state(self._items), "start": self._start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        items = experiences_from(state["items"])
        if len(items) > self.capacity:
            raise ValueError(f"a snapshot of {len(items)} experiences; capacity {self.capacity}")
        self._items = items
        self._start = int(state["start"])

    def __getitem__(self, index: int) -> Experience:
        """Logical index: 0 is the oldest experience."""
        return self._items[(self._start + index) % len(self._items)]

    def transition_at(self, slot: int) -> list[Experience]:
        """The transition out of the experience in physical ``slot``."""
        return [self._items[slot], self._items[(slot + 1) % len(self._items)]]

    def num_transitions(self) -> int:
        """Experiences that have a successor in the same episode."""
        return sum(1 for i in range(len(self) - 1) if self[i].has_successor)

    def sample(self, num: int, rng: random.Random, length: int = 1) -> list[list[Experience]]:
        """``num`` runs drawn uniformly (with replacement) by their first step among valid
        ones: each ``length`` transitions long, or shorter where its episode ends first."""
        if len(self) < 2:
            return []
        sequences: list[list[Experience]] = []
        attempts = 0
        while len(sequences) < num:
            i = rng.randrange(len(self) - 1)
            if self[i].has_successor:
                run = [self[i], self[i + 1]]
                while len(run) <= length and i + len(run) < len(self) and run[-1].has_successor:
                    run.append(self[i + len(run)])
                sequences.append(run)
            attempts += 1
            if attempts > 100 * num and not sequences:
                return []
        return sequences


@dataclass
class PrioritizedSample:
    """Transitions drawn by priority, their slots and their importance weights."""

    sequences: list[list[Experience]]
    slots: np.ndarray
    weights: np.ndarray


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016).

    A transition is drawn with probability ``P(i) = p_i^alpha / sum_k p_k^alpha`` and
    weighted by ``w_i = (N P(i))^-beta / max_k w_k``, i.e. ``(P(i) / P_min)^-beta``: the
    rarest-drawn transition gets weight 1. A new transition gets the largest priority
    seen so far, so it is replayed at least once soon.
    """

    def __init__(self, capacity: int, alpha: float = 0.6, epsilon: float = 1e-6) -> None:
        super().__init__(capacity)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon}")
        self.alpha = alpha
        self.epsilon = epsilon
        self.max_priority = 1.0
        self.tree = PriorityTree(capacity)

    def add(self, experience: Experience) -> int:
        previous = self._newest_slot()
        slot = super().add(experience)
        self.tree.set(slot, 0.0)  # no transition leaves the newest experience yet
        if previous is not None and self._items[previous].has_successor:
            self.tree.set(previous, self.max_priority**self.alpha)
        return slot

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "max_priority": self.max_priority,
            "tree": self.tree.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.max_priority = float(state["max_priority"])
        self.tree.load_state_dict(state["tree"])

    def sample_prioritized(
        self, num: int, rng: random.Random, beta: float
    ) -> PrioritizedSample | None:
        """``num`` transitions, one from each of ``num`` equal slices of the priority mass."""
        total = self.tree.total
        if total <= 0:
            return None
        segment = total / num
        masses = np.array([rng.uniform(k * segment, (k + 1) * segment) for k in range(num)])
        slots = self.tree.find(np.minimum(masses, np.nextafter(total, 0)))
        probabilities = np.array([self.tree[int(s)] for s in slots]) / total
        smallest = self.tree.min_positive / total
        weights = (probabilities / smallest) ** (-beta)
        return PrioritizedSample(
            sequences=[self.transition_at(int(s)) for s in slots],
            slots=slots,
            weights=weights.astype(np.float32),
        )

    def update_priorities(self, slots: np.ndarray, errors: np.ndarray) -> None:
        """New priorities ``|error| + epsilon`` for the transitions in ``slots``."""
        raw = np.abs(np.asarray(errors, dtype=np.float64).reshape(len(slots))) + self.epsilon
        if not np.isfinite(raw).all():
            raise ValueError(f"priorities must be finite, got {raw}")
        self.max_priority = max(self.max_priority, float(raw.max()))
        for slot, priority in zip(slots.tolist(), raw.tolist(), strict=True):
            if self.tree[slot] > 0:  # a transition that still exists
                self.tree.set(slot, priority**self.alpha)
