"""Taking an episode up again in the middle, for an exact resume.

A checkpoint is taken while every agent waits on a CDP, in the middle of its episode. An
environment's state cannot be saved in general, but it can be rebuilt: the env starts
the episode again from the same random state (``Env.episode_start`` / ``reset_from``)
and is stepped with the same actions. So while checkpoints are on, each agent logs the
replies it got this episode (``EpisodeLog``); on resume the agent runs its own episode
loop again, its calls answered from the log (``EpisodeReplay``) instead of by the CDPs,
until it reaches the call that was on its way at the checkpoint, which it then makes for
real. Every replayed call checks that it was asked with the same data; an env that does
not step the same way (``ReplayDiverged``) costs that agent its episode, nothing else.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flare.framework.batch import LearnBatch

PREDICT = "predict"
STORE = "store"


class ReplayDiverged(Exception):
    """The resumed episode did not go as logged; it is dropped (not a game over)."""


def checksum(*parts: dict[str, Any]) -> int:
    """A cheap fingerprint of a call's data, to see that a replay asks the same."""
    crc = 0
    for arrays in parts:
        for name in sorted(arrays):
            value = arrays[name]
            array = value if type(value) is np.ndarray else np.asarray(value)
            crc = zlib.crc32(name.encode(), crc)
            crc = zlib.crc32(np.ascontiguousarray(array).view(np.uint8).data, crc)
        crc = zlib.crc32(b"|", crc)
    return crc


@dataclass
class Call:
    """One call an agent made this episode: what it asked (its checksum) and got."""

    kind: str
    ct: str
    checksum: int
    result: Any


@dataclass
class InFlight:
    """The call an agent was waiting on at the checkpoint (for a learn: its batch)."""

    kind: str
    ct: str
    batch: LearnBatch | None = None


@dataclass
class EpisodeLog:
    """The episode so far: how the env started it and every call's reply."""

    start: dict[str, Any] | None
    calls: list[Call] = field(default_factory=list)

    def state(self, in_flight: InFlight | None) -> dict[str, Any]:
        """Columns, not one entry per call: an episode of thousands of steps is a few
        stacked arrays per CT (see ``SavedEpisode.from_state``)."""
        predicted: dict[str, list[Any]] = {}
        for call in self.calls:
            if call.kind == PREDICT:
                predicted.setdefault(call.ct, []).append(call.result)
        return {
            "start": self.start,
            "kinds": "".join("p" if c.kind == PREDICT else "s" for c in self.calls),
            "cts": [c.ct for c in self.calls],
            "checksums": np.array([c.checksum for c in self.calls], dtype=np.uint32),
            "predicted": {ct: _stacked(results) for ct, results in predicted.items()},
            "stored": [c.result for c in self.calls if c.kind == STORE],
            "in_flight": None
            if in_flight is None
            else {
                "kind": in_flight.kind,
                "ct": in_flight.ct,
                "batch": None if in_flight.batch is None else dataclasses.asdict(in_flight.batch),
            },
        }


def _stacked(results: list[Any]) -> dict[str, dict[str, np.ndarray]]:
    """``[(actions, states), ...]`` as ``{"actions": {name: [n, ...]}, "states": ...}``."""
    return {
        part: {name: np.stack([r[i][name] for r in results]) for name in results[0][i]}
        for i, part in enumerate(("actions", "states"))
    }


@dataclass
class SavedEpisode:
    """An episode as a checkpoint holds it, ready to be replayed."""

    log: EpisodeLog
    in_flight: InFlight | None

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SavedEpisode:
        predicted = {
            ct: [
                ({k: v[i] for k, v in columns["actions"].items()},
                 {k: v[i] for k, v in columns["states"].items()})
                for i in range(_rows(columns))
            ]
            for ct, columns in state["predicted"].items()
        }  # fmt: skip
        taken = {ct: 0 for ct in predicted}
        stored = iter(state["stored"])
        calls = []
        for kind, ct, crc in zip(state["kinds"], state["cts"], state["checksums"], strict=True):
            if kind == "p":
                result = predicted[ct][taken[ct]]
                taken[ct] += 1
                calls.append(Call(PREDICT, str(ct), int(crc), result))
            else:
                calls.append(Call(STORE, str(ct), int(crc), next(stored)))
        flight = state["in_flight"]
        in_flight = None
        if flight is not None:
            batch = flight["batch"]
            in_flight = InFlight(
                str(flight["kind"]),
                str(flight["ct"]),
                None if batch is None else LearnBatch(**batch),
            )
        return cls(EpisodeLog(state["start"], calls), in_flight)


def _rows(columns: dict[str, dict[str, np.ndarray]]) -> int:
    for part in columns.values():
        for array in part.values():
            return len(array)
    return 0


class LiveCall:
    """What ``EpisodeReplay.answer`` returns once the replay has caught up."""


LIVE = LiveCall()


class EpisodeReplay:
    """Answers an agent's calls from a saved episode, then hands over to the CDPs."""

    def __init__(self, saved: SavedEpisode) -> None:
        self._calls = deque(saved.log.calls)
        self.in_flight = saved.in_flight

    def answer(self, kind: str, ct: str, *data: dict[str, Any]) -> Any:
        """The logged reply to this call; ``LIVE`` for the call that was on its way (the
        caller makes it for real, re-sending ``in_flight.batch`` for a learn)."""
        if self._calls:
            call = self._calls.popleft()
            if (call.kind, call.ct) != (kind, ct):
                raise ReplayDiverged(
                    f"the resumed episode made a {kind} call to CT {ct!r} where it had made "
                    f"a {call.kind} call to {call.ct!r}"
                )
            if call.checksum != checksum(*data):
                raise ReplayDiverged(
                    f"the resumed episode's {kind} call to CT {ct!r} came with other data "
                    "(the environment does not replay the same)"
                )
            return call.result
        flight = self.in_flight
        if flight is not None and (flight.kind, flight.ct) != (kind, ct):
            raise ReplayDiverged(
                f"the resumed episode made a {kind} call to CT {ct!r}; the checkpoint waited "
                f"on a {flight.kind} call to {flight.ct!r}"
            )
        return LIVE

    @property
    def done(self) -> bool:
        return not self._calls
