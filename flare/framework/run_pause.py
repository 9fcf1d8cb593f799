"""A consistent moment of a running Manager, for an exact checkpoint.

Every CDP is held (it takes requests in but serves none), so every agent soon waits on
one: then nothing moves. The learner's state (models, optimizers, random generators) and
each agent process's snapshot (``SaveAgents``) are taken at that same moment, and a
resumed run starts from exactly there: its first batches are the ones that were waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, cast

from flare.framework.computation_data_processor import ComputationDataProcessor
from flare.framework.process_control import AgentsSaved, SaveAgents, save_agents

if TYPE_CHECKING:
    from flare.framework.agent import Agent


class PauseError(RuntimeError):
    """The run could not be paused, or an agent process could not save its agents."""


@dataclass(frozen=True)
class ProcessControl:
    """The Manager's end of one agent process's control pipe."""

    connection: Connection
    agent_ids: tuple[int, ...]


class RunPause:
    """While it lasts, no CDP serves and every agent still playing waits on one."""

    def __init__(
        self, controls: Sequence[ProcessControl], playing: frozenset[int], serial: int = 0
    ) -> None:
        self.controls = controls
        self.playing = playing  # the agents connected to a CDP when the pause began
        self.serial = serial  # this pause's number: answers to an earlier one are dropped
        # agents of this process (external ones): saved here, into one file of their own
        self.local_agents: Sequence[Agent] = ()

    def save_agents(
        self, directory: Path, with_buffers: bool = True, timeout_s: float = 60.0
    ) -> list[AgentsSaved]:
        """Each process with a playing agent writes ``directory/agents-<first id>.npz``;
        the local agents are written the same way, here."""
        asked = {}
        for control in self.controls:
            if not self.playing.intersection(control.agent_ids):
                continue
            path = directory / f"agents-{control.agent_ids[0]:05d}.npz"
            try:
                control.connection.send(SaveAgents(path, with_buffers, self.serial))
            except (OSError, BrokenPipeError) as err:
                raise PauseError(f"agent process {control.agent_ids} is gone: {err}") from None
            asked[control.connection] = control
        saved: list[AgentsSaved] = []
        deadline = time.monotonic() + timeout_s
        while asked:
            left = deadline - time.monotonic()
            ready = wait(list(asked), max(0.0, left))
            if not ready:
                stuck = [c.agent_ids for c in asked.values()]
                raise PauseError(f"agent processes {stuck} did not save within {timeout_s} s")
            for ready_one in ready:
                connection = cast(Connection, ready_one)
                control = asked.pop(connection)
                try:
                    answer = connection.recv()
                except (EOFError, OSError) as err:
                    raise PauseError(f"agent process {control.agent_ids} is gone: {err}") from None
                if isinstance(answer, AgentsSaved) and answer.serial != self.serial:
                    asked[connection] = control  # (late, from a pause that gave up on it)
                    continue
                if not isinstance(answer, AgentsSaved) or answer.error:
                    detail = answer.error if isinstance(answer, AgentsSaved) else repr(answer)
                    raise PauseError(f"agent process {control.agent_ids} could not save: {detail}")
                saved.append(answer)
        if self.local_agents:
            saved.append(save_local_agents(self.local_agents, directory, with_buffers, self.serial))
        return saved


def save_local_agents(
    agents: Sequence[Agent], directory: Path, with_buffers: bool = True, serial: int = 0
) -> AgentsSaved:
    """Agents of this process (none of them busy) into ``directory/agents-<first id>.npz``,
    as an agent process writes its own."""
    first = agents[0].id
    path = directory / f"agents-{first:05d}.npz"
    answer = save_agents(SaveAgents(path, with_buffers, serial), first, agents, {})
    if answer.error:
        raise PauseError(f"agents {answer.agents} could not save: {answer.error}")
    return answer


@contextmanager
def paused(
    cdps: Sequence[ComputationDataProcessor],
    controls: Sequence[ProcessControl],
    timeout_s: float = 60.0,
    serial: int = 0,
    quiet: Callable[[], frozenset[int]] = frozenset,
) -> Iterator[RunPause]:
    """Hold every CDP until every connected agent waits on one, or is ``quiet`` (waits
    elsewhere without touching its state: an external agent on its simulator), or
    ``timeout_s`` passes (``PauseError``); release them when the block ends."""
    for cdp in cdps:
        cdp.hold()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            for cdp in cdps:
                if cdp.error:
                    raise PauseError(f"a CDP failed: {cdp.error}")
            if all(cdp.is_held() for cdp in cdps):
                connected = frozenset().union(*(c.agents_connected() for c in cdps))
                waiting = frozenset().union(*(c.agents_waiting() for c in cdps))
                if connected <= waiting | quiet():
                    break
            if time.monotonic() > deadline:
                held = [cdp.name for cdp in cdps if not cdp.is_held()]
                missing = sorted(
                    frozenset().union(*(c.agents_connected() for c in cdps))
                    - frozenset().union(*(c.agents_waiting() for c in cdps))
                )
                raise PauseError(
                    f"the agents did not all wait on a CDP within {timeout_s} s "
                    "(an env step that takes longer, or a simulator being reconnected): "
                    f"agents {missing} were busy" + (f", CDPs {held} not held" if held else "")
                )
            time.sleep(0.005)
        yield RunPause(controls, connected, serial)
    finally:
        for cdp in cdps:
            cdp.release()
