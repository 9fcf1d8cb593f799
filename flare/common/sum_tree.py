"""Segment trees over priorities: proportional sampling and the smallest priority in O(log n)."""

from __future__ import annotations

import numpy as np


class PriorityTree:
    """Non-negative priorities in ``capacity`` slots, with their sum and smallest positive one.

    A slot with priority 0 is never sampled and does not count towards the minimum.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._leaves = 1 << (capacity - 1).bit_length()
        self._sums = np.zeros(2 * self._leaves)
        self._mins = np.full(2 * self._leaves, np.inf)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"sums": self._sums.copy(), "mins": self._mins.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state["sums"].shape != self._sums.shape:
            raise ValueError(
                f"a priority tree of {state['sums'].shape}; this one is {self._sums.shape}"
            )
        self._sums = np.array(state["sums"], dtype=np.float64)
        self._mins = np.array(state["mins"], dtype=np.float64)

    def __getitem__(self, slot: int) -> float:
        return float(self._sums[self._leaves + slot])

    def set(self, slots: np.ndarray | int, priorities: np.ndarray | float) -> None:
        slots = np.atleast_1d(np.asarray(slots, dtype=np.int64))
        priorities = np.broadcast_to(np.asarray(priorities, dtype=np.float64), slots.shape)
        if (priorities < 0).any() or not np.isfinite(priorities).all():
            raise ValueError(f"priorities must be finite and >= 0, got {priorities}")
        if ((slots < 0) | (slots >= self.capacity)).any():
            raise IndexError(f"slots {slots} out of range [0, {self.capacity})")
        for slot, priority in zip(slots.tolist(), priorities.tolist(), strict=True):
            node = self._leaves + slot
            self._sums[node] = priority
            self._mins[node] = priority if priority > 0 else np.inf
            node //= 2
            while node >= 1:
                left, right = 2 * node, 2 * node + 1
                self._sums[node] = self._sums[left] + self._sums[right]
                self._mins[node] = min(self._mins[left], self._mins[right])
                node //= 2

    @property
    def total(self) -> float:
        return float(self._sums[1])

    @property
    def min_positive(self) -> float:
        """The smallest positive priority (``inf`` when every slot is 0)."""
        return float(self._mins[1])

    def find(self, masses: np.ndarray) -> np.ndarray:
        """For each mass in ``[0, total)``, the slot whose cumulative priority range holds it."""
        masses = np.asarray(masses, dtype=np.float64).copy()
        if self.total <= 0:
            raise ValueError("cannot sample: every priority is 0")
        nodes = np.ones(len(masses), dtype=np.int64)
        for _ in range(self._leaves.bit_length() - 1):  # one level down per pass
            left = 2 * nodes
            left_sums = self._sums[left]
            go_right = masses >= left_sums
            masses = np.where(go_right, masses - left_sums, masses)
            nodes = np.where(go_right, left + 1, left)
        slots = nodes - self._leaves
        # float rounding can land on an empty slot: take the nearest live one to its left
        live = np.flatnonzero(self._sums[self._leaves : self._leaves + self.capacity])
        for k, slot in enumerate(slots):
            if slot >= self.capacity or self._sums[self._leaves + slot] == 0:
                before = live[live <= slot]
                slots[k] = before[-1] if len(before) else live[0]
        return slots
