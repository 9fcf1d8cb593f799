"""Calls that the agents of one process make together, e.g. stepping their simulator
sessions in one message.

An agent of a group (``flare.framework.agent_group``) that makes a ``BatchedCall`` hands
it to its group and pauses, as it does for a CDP request. Once no agent of the group
can go on, the group runs the calls that share a ``batch_key`` through one ``Batcher``
(one round trip for all of them) and resumes each agent with its own result. Outside a
group there is nothing to wait for: ``call_batched`` says so and the caller makes the
call alone. The calls' results do not depend on whether they were batched, so a seeded
run plays the same games either way.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Protocol

import greenlet

from flare.framework.cdp_channel import AgentGreenlet


class Batcher(Protocol):
    """Runs many calls of one ``batch_key`` at once; one per key and agent process."""

    def run(self, calls: Sequence[Any]) -> list[object]:  # (the calls of its own key)
        """Each call's result, in order; a call that failed has its exception instead
        (raised in the agent that made it), and never costs the others theirs."""
        ...

    def close(self) -> None:
        """Release what the batcher holds (e.g. its stream); the group ends."""
        ...


class BatchedCall(Protocol):
    """What an agent hands its group: the key of the calls it can go with, and how to
    make the batcher for them when the group has none yet."""

    @property
    def batch_key(self) -> Hashable: ...

    def new_batcher(self) -> Batcher: ...


NOT_IN_A_GROUP = object()
"""``call_batched``'s answer outside an agent group: make the call alone."""


def call_batched(call: BatchedCall) -> object:
    """Hand ``call`` to the agent group this code runs in and return its result (raising
    the call's exception); ``NOT_IN_A_GROUP`` when it runs in no group."""
    current = greenlet.getcurrent()
    if not isinstance(current, AgentGreenlet):
        return NOT_IN_A_GROUP
    group = current.parent  # (the group's loop, which started the agent's greenlet)
    assert group is not None
    return group.switch(call)


class Batches:
    """The calls an agent group holds, by key, and the batchers that run them."""

    def __init__(self) -> None:
        self._waiting: dict[Hashable, list[tuple[int, BatchedCall]]] = {}
        self._batchers: dict[Hashable, Batcher] = {}

    def add(self, agent_id: int, call: BatchedCall) -> None:
        self._waiting.setdefault(call.batch_key, []).append((agent_id, call))

    def run(self) -> list[tuple[int, object]]:
        """Run every waiting call, key by key in the order the keys first came; each
        agent's result (or exception), in the order the agents asked."""
        waiting, self._waiting = self._waiting, {}
        results: list[tuple[int, object]] = []
        for key, calls in waiting.items():
            batcher = self._batchers.get(key)
            if batcher is None:
                batcher = self._batchers[key] = calls[0][1].new_batcher()
            outcomes = batcher.run([call for _, call in calls])
            if len(outcomes) != len(calls):
                raise RuntimeError(
                    f"a batcher answered {len(outcomes)} of {len(calls)} calls ({key!r})"
                )
            for (agent_id, _), outcome in zip(calls, outcomes, strict=True):
                results.append((agent_id, outcome))
        return results

    def close(self) -> None:
        batchers, self._batchers = self._batchers, {}
        for batcher in batchers.values():
            batcher.close()
