"""An agent process: one or several agents, each playing in a greenlet of its own.

Every agent keeps its plain, blocking episode loop. When an agent asks a CDP for
something, its greenlet hands the request to the group and pauses; once no agent of the
group can go on, the group sends each CDP the requests waiting on it in one message,
and resumes each agent with its reply as replies come in. So k agents in one process
cost one pipe round trip per step instead of k, and no thread switches: what makes
cheap environments fast on few cores. Their env steps run one after another, so an
environment that is slow to step wants a process of its own.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from multiprocessing.connection import Connection, wait
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import TYPE_CHECKING, Any, cast

from flare.framework.batched_calls import Batches
from flare.framework.cdp_channel import AgentGreenlet, CDPClosed, CDPLink, ChannelRequest
from flare.framework.process_control import SaveAgents, save_agents, set_global_random_state
from flare.framework.reports import ProcessReady

if TYPE_CHECKING:
    from flare.framework.agent import Agent
    from flare.framework.batched_calls import BatchedCall


def run_agent_process(
    agents: Sequence[Agent],
    stop_event: Event,
    reports: Queue,
    go: Event | None = None,
    control: Connection | None = None,
    random_state: dict[str, Any] | None = None,
) -> None:
    """Entry point of an agent process: play every agent's games, then flush the reports.

    With ``go``, the agents first build their envs and their first requests, then the
    process reports ``ProcessReady`` and waits for ``go`` (set once every process is
    ready), so a slow start (imports, a simulator session that takes a second to open)
    never splits the first batch of a seeded run. ``control`` carries the Manager's
    requests for the agents' snapshots (``flare.framework.process_control``);
    ``random_state``, the process-wide generators a resumed run's snapshot holds.
    """
    _end_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the Manager coordinates Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the Manager's handler, if forked
    gate = None
    if go is not None:
        ids = tuple(agent.id for agent in agents)
        gate = partial(_report_ready_and_wait, ids, go, stop_event, reports, random_state)
    try:
        play_together(agents, stop_event, reports, gate, control)
    finally:
        reports.close()
        reports.join_thread()


def _end_with_parent() -> None:
    """A learner killed with SIGKILL takes its agent processes with it (Linux): a forked
    child holds the learner's own ends of its pipes, so it would never see them close."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # (not Linux: the pipes' EOF is all there is)
        return
    if os.getppid() != parent:  # (the parent died before the call)
        os._exit(0)


def _report_ready_and_wait(
    ids: tuple[int, ...],
    go: Event,
    stop: Event,
    reports: Queue,
    random_state: dict[str, Any] | None = None,
) -> None:
    if random_state is not None:  # (a resumed run, its episodes replayed: as they were)
        set_global_random_state(random_state)
    reports.put(ProcessReady(ids))
    while not go.wait(0.05) and not stop.is_set():
        pass


def play_together(
    agents: Sequence[Agent],
    stop_event: Event,
    reports: Queue,
    before_first_request: Callable[[], None] | None = None,
    control: Connection | None = None,
) -> None:
    """Run ``agent.play`` for every agent, batching their CDP requests per link.

    Agents are resumed in id order and requests are sent in that order, so a seeded run
    does not depend on timing inside the process. ``before_first_request`` runs once,
    when every agent has either asked for something or ended, before anything is sent.
    A ``SaveAgents`` on ``control`` is answered while every agent waits on a CDP.
    Batched calls (``flare.framework.batched_calls``, e.g. simulator steps) are run,
    key by key, once the CDP requests are sent, so the two overlap.
    """
    batches = Batches()
    try:
        _play(agents, stop_event, reports, batches, before_first_request, control)
    finally:
        batches.close()


def _play(
    agents: Sequence[Agent],
    stop_event: Event,
    reports: Queue,
    batches: Batches,
    before_first_request: Callable[[], None] | None,
    control: Connection | None,
) -> None:
    games = {a.id: AgentGreenlet(partial(a.play, stop_event, reports)) for a in agents}
    ready: deque[tuple[int, object]] = deque((agent_id, None) for agent_id in sorted(games))
    waiting: dict[int, CDPLink] = {}  # agent -> the link its request went out on
    asked_for: dict[int, object] = {}  # agent -> the request it waits on
    gate = _Once(before_first_request)
    while games:
        while ready:
            agent_id, reply = ready.popleft()
            run = games[agent_id]
            if isinstance(reply, BaseException):
                asked = run.throw(reply)
            elif reply is None:
                asked = run.switch()
            else:
                asked = run.switch(reply)
            if run.dead:
                del games[agent_id]
                continue
            if not isinstance(asked, ChannelRequest):
                batches.add(agent_id, cast("BatchedCall", asked))
                continue
            asked.link.queue(agent_id, asked.message)
            waiting[agent_id] = asked.link
            asked_for[agent_id] = asked.message
        gate()
        links = {id(link): link for link in waiting.values()}.values()
        for link in links:
            try:
                link.flush()
            except CDPClosed as closed:
                _fail_waiters(link, closed, waiting, ready)
        ready.extend(batches.run())  # (while the CDPs compute)
        if ready:
            continue  # (the CDPs' replies wait in their pipes meanwhile)
        # (an agent process's links are pipes; in-process ends never reach a group)
        busy = {cast(Connection, link.connection): link for link in waiting.values()}
        if not busy:
            continue
        watched: list[Connection] = [*busy, *([control] if control is not None else [])]
        for connection in wait(watched):
            if connection is control:
                if not _answer_control(control, agents, games, asked_for):
                    control = None  # (the Manager went away; the CDPs' pipes tell the agents)
                continue
            link = busy[cast(Connection, connection)]
            try:
                replies = link.receive()
            except CDPClosed as closed:
                _fail_waiters(link, closed, waiting, ready)
                continue
            for agent_id in sorted(replies):
                if waiting.get(agent_id) is link:
                    del waiting[agent_id]
                    ready.append((agent_id, replies[agent_id]))


def _answer_control(
    control: Connection,
    agents: Sequence[Agent],
    games: dict[int, AgentGreenlet],
    asked_for: dict[int, object],
) -> bool:
    """Answer one control message; False once the Manager's end is closed."""
    try:
        message = control.recv()
    except (EOFError, OSError):
        return False
    if not isinstance(message, SaveAgents):
        raise TypeError(f"an agent process got an unknown control message {message!r}")
    playing = [agent for agent in agents if agent.id in games]
    try:
        control.send(save_agents(message, agents[0].id, playing, asked_for))
    except (OSError, BrokenPipeError):
        return False
    return True


class _Once:
    """Calls ``action`` (if any) the first time it is called, and never again."""

    def __init__(self, action: Callable[[], None] | None) -> None:
        self._action = action

    def __call__(self) -> None:
        action, self._action = self._action, None
        if action is not None:
            action()


def _fail_waiters(
    link: CDPLink,
    closed: CDPClosed,
    waiting: dict[int, CDPLink],
    ready: deque[tuple[int, object]],
) -> None:
    """Every agent waiting on a link that went away gets ``CDPClosed`` raised in it."""
    for agent_id in sorted(a for a, other in waiting.items() if other is link):
        del waiting[agent_id]
        ready.append((agent_id, CDPClosed(str(closed))))
