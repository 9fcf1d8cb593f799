"""Agents played from outside the Manager's processes: a simulator's Act stream.

A run that accepts external agents keeps ``slots`` of them: Agents like any other (same
kind, same helpers, ids after the Manager's own agents), built before the run starts and
kept for its whole life, so a stream that reconnects plays on as the same agent with its
replay buffers. A stream takes a free slot (``open``), joins every CDP on a pipe of its
own (batched with the agent processes' requests), and gives the slot back when it ends
(``ExternalSession.close``). The agent's episode loop runs in the stream's own thread
(``Agent.play_session``), on an env the stream drives.

While a checkpoint pauses the run, no session opens (``frozen``): the slots' agents are
then either waiting on a CDP or not playing, and their snapshots are consistent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from flare.framework.agent import Agent, Reports, StopFlag
from flare.framework.cdp_channel import CDPChannel, CDPClosed, CDPLink
from flare.framework.computation_data_processor import CDPStopped, ComputationDataProcessor
from flare.framework.pipe_messages import Request


class SlotsFull(RuntimeError):
    """Every external agent of the run is playing."""


class RunNotStarted(RuntimeError):
    """The run has not started (within the wait) or no longer takes external agents."""


class RunOver(RuntimeError):
    """The run is over, or its external agents have played their games."""


class DetachedChannel(CDPChannel):
    """A helper's channel between sessions: any request is refused."""

    def __init__(self, agent_id: int) -> None:  # (no link: nothing to send on)
        self.agent_id = agent_id

    def request(self, message: Request) -> object:
        raise CDPClosed(f"external agent {self.agent_id} has no session")

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class ExternalStop:
    """An external agent stops when the run stops or the external games are played."""

    run: StopFlag
    played: threading.Event

    def is_set(self) -> bool:
        return self.played.is_set() or self.run.is_set()


class ExternalSession:
    """One slot taken by one stream: the agent, and its pipes to the CDPs."""

    def __init__(self, slots: ExternalAgents, agent: Agent, links: Sequence[CDPLink]) -> None:
        self.slots = slots
        self.agent = agent
        self.links = links
        self.on_stream = False  # waits for its simulator (touching nothing) or at the gate
        self._closed = False

    def await_stream(self) -> None:
        """The agent is about to wait for its simulator's next step."""
        with self.slots._changed:
            self.on_stream = True

    def stream_answered(self) -> None:
        """The simulator answered: the agent goes on once no checkpoint is being taken."""
        with self.slots._changed:
            while self.slots._frozen:
                self.slots._changed.wait()
            self.on_stream = False

    def close(self) -> None:
        """Leave the CDPs (they stop waiting for the agent) and free the slot."""
        if self._closed:
            return
        self._closed = True
        for helper in self.agent.helpers.values():
            helper.close()  # (AgentDone on its link, which closes the pipe)
            helper.channel = DetachedChannel(self.agent.id)
        self.slots._release(self.agent.id)


class ExternalAgents:
    """The slots of a run's external agents and the rules for taking one.

    Args:
        games: external games the run plays in all (0: as many as it goes on for).
    """

    def __init__(self, games: int = 0) -> None:
        if games < 0:
            raise ValueError(f"games must be >= 0, got {games}")
        self.games = games
        self.agents: list[Agent] = []
        self.played = 0  # external games finished in the run (a resumed run counts on)
        self._begun = 0  # games begun or finished (set with ``played`` at the start)
        # agent id -> its session (None while the session joins the CDPs)
        self._sessions: dict[int, ExternalSession | None] = {}
        self._cdps: Mapping[str, ComputationDataProcessor] = {}
        self._stop: ExternalStop | None = None
        self._reports: Reports | None = None
        self._state = "waiting"  # -> "open" -> "over"
        self._frozen = False
        self._changed = threading.Condition()

    @property
    def ids(self) -> frozenset[int]:
        return frozenset(agent.id for agent in self.agents)

    @property
    def streams(self) -> int:
        """Sessions open now."""
        return len(self._sessions)

    def __len__(self) -> int:
        return len(self.agents)

    def add(self, agent: Agent) -> None:
        self.agents.append(agent)

    def keeps_run_going(self, has_own_agents: bool) -> bool:
        """Whether the run waits for external games: a budget is left to play, or the
        run has no agents of its own (then it goes on until it is stopped)."""
        if not self.agents:
            return False
        if self.games:
            return self.played < self.games
        return not has_own_agents

    # ----- the Manager's side -----------------------------------------------------------
    def start(
        self, cdps: Mapping[str, ComputationDataProcessor], stop: StopFlag, reports: Reports
    ) -> None:
        """The run serves: sessions may open (the CDPs must ``stay_open``)."""
        with self._changed:
            self._begun = self.played
            self._cdps = cdps
            self._stop = ExternalStop(stop, threading.Event())
            self._reports = reports
            self._state = "open"
            self._changed.notify_all()

    def begin_game(self) -> bool:
        """Take one game of the budget for an episode about to start (False: all are
        taken); ``give_back_game`` returns it when that episode is cut short. So the
        Act agents play exactly ``games`` games, however many streams race for the last."""
        with self._changed:
            if self.games and self._begun >= self.games:
                return False
            self._begun += 1
            return True

    def give_back_game(self) -> None:
        """An episode that ``begin_game`` let start was cut short: its game is free again."""
        with self._changed:
            self._begun -= 1

    def count_game(self, agent_id: int) -> bool:
        """A finished game of an external agent; True when it completes the budget."""
        if agent_id not in self.ids:
            return False
        self.played += 1
        if self.games and self.played >= self.games and self._stop is not None:
            self._stop.played.set()
            return True
        return False

    def close(self) -> None:
        """The run is over: no session opens any more (those open end at their next step)."""
        with self._changed:
            self._state = "over"
            if self._stop is not None:
                self._stop.played.set()
            self._changed.notify_all()

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """No session opens while the block runs (one that asks waits for its end)."""
        with self._changed:
            self._frozen = True
        try:
            yield
        finally:
            with self._changed:
                self._frozen = False
                self._changed.notify_all()

    # ----- a stream's side --------------------------------------------------------------
    @property
    def stop(self) -> StopFlag:
        if self._stop is None:
            raise RunNotStarted("the run has not started")
        return self._stop

    @property
    def reports(self) -> Reports:
        if self._reports is None:
            raise RunNotStarted("the run has not started")
        return self._reports

    def open(self, wait_s: float = 10.0) -> ExternalSession:
        """Take the lowest free slot and join its agent to every CDP. Waits up to
        ``wait_s`` for a run that has not started yet (or is being checkpointed)."""
        deadline = time.monotonic() + wait_s
        with self._changed:
            while self._state == "waiting" or (self._frozen and self._state == "open"):
                left = deadline - time.monotonic()
                if left <= 0 or not self._changed.wait(left):
                    if self._state == "waiting":
                        raise RunNotStarted(f"the run has not started within {wait_s:g} s")
                    raise RunNotStarted(f"the run was being checkpointed for over {wait_s:g} s")
            if self._state == "over" or (self._stop is not None and self._stop.is_set()):
                raise RunOver("the run is over: it takes no more external agents")
            free = [a for a in self.agents if a.id not in self._sessions]
            if not free:
                raise SlotsFull(
                    f"the run accepts {len(self.agents)} external agent(s) at once, and as "
                    "many are playing"
                )
            agent = free[0]
            self._sessions[agent.id] = None
        links: dict[str, CDPLink] = {}
        try:
            for name, cdp in self._cdps.items():
                links[name] = CDPLink(cdp.attach(agent.id), [agent.id])
        except CDPStopped as err:
            for link in links.values():
                link.done(agent.id)
            self._release(agent.id)
            raise RunOver(f"the run is over: {err}") from None
        for name, link in links.items():
            agent.helpers[name].channel = CDPChannel(link, agent.id)
        session = ExternalSession(self, agent, list(links.values()))
        with self._changed:
            self._sessions[agent.id] = session
        return session

    def _release(self, agent_id: int) -> None:
        with self._changed:
            self._sessions.pop(agent_id, None)
            self._changed.notify_all()

    def quiet(self) -> frozenset[int]:
        """Agents whose session waits on its simulator: they touch nothing until the run
        is no longer ``frozen``, so a pause need not wait for them."""
        with self._changed:
            return frozenset(a for a, s in self._sessions.items() if s and s.on_stream)
