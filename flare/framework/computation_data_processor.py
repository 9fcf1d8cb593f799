"""ComputationDataProcessor (CDP): batches many agents' requests for one ComputationTask.

Each agent process talks to a CDP over one pipe, shared by the agents it hosts; each
agent has at most one request in flight, and requests and replies travel in bundles by
agent id. The CDP's thread gathers requests until every connected agent is waiting, or
until ``batch_wait_s`` has passed since the first one arrived (so one slow agent, or an
agent busy with another CT, never stalls the rest), then runs one batched ``learn`` and
one batched ``predict`` and sends each process the slices of the results its agents
asked for.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import cast

import numpy as np
import torch

from flare.framework.background_learning import BackgroundLearner
from flare.framework.batch import LearnBatch, concat_arrays, split_arrays, take_rows
from flare.framework.computation_task import ComputationTask
from flare.framework.local_pipe import CLOSED, AgentEnd, CDPEnd
from flare.framework.pipe_messages import (
    AgentDone,
    LearnReply,
    LearnRequest,
    PredictBatch,
    PredictReplyBatch,
    ReplyBundle,
    RequestBundle,
)

logger = logging.getLogger(__name__)


Pipe = Connection | CDPEnd  # (an agent process's pipe, or an in-process agent's)


class CDPStopped(RuntimeError):
    """An agent asked to join a CDP that no longer serves."""


@dataclass
class CDPStats:
    """How well batching works: calls made and instances served."""

    predict_calls: int = 0
    predict_instances: int = 0
    learn_calls: int = 0
    learn_instances: int = 0


@dataclass
class PendingRequests:
    """What waits for the next batch: each process's prediction rows as they came
    (stacked blocks, never unpacked per agent), and learn requests by agent."""

    blocks: list[tuple[Pipe, PredictBatch]] = field(default_factory=list)
    learn: dict[int, LearnRequest] = field(default_factory=dict)

    def agent_ids(self) -> frozenset[int]:
        return frozenset([*self.learn, *(a for _, block in self.blocks for a in block.agent_ids)])

    def __len__(self) -> int:
        """Agents waiting."""
        return len(self.learn) + sum(len(block.agent_ids) for _, block in self.blocks)

    def keep_only(self, connected: dict[int, Pipe]) -> None:
        """Forget the requests of agents that stopped while they waited (rare: a block is
        rebuilt only when it held one)."""
        self.learn = {a: r for a, r in self.learn.items() if a in connected}
        kept = []
        for conn, block in self.blocks:
            if all(a in connected for a in block.agent_ids):
                kept.append((conn, block))
                continue
            left = {a: r for a, r in block.unpack().items() if a in connected}
            if left:
                kept.append((conn, PredictBatch.pack(left)))
        self.blocks = kept


def stack_blocks(blocks: Sequence[PredictBatch]) -> PredictBatch:
    """One batch of every block's rows, in agent-id order (so a seeded run's batches do
    not depend on which process's message came first): one concatenation per name, and
    a row gather only when the blocks' agents interleave."""
    blocks = sorted(blocks, key=lambda block: block.agent_ids[0])
    if len(blocks) == 1:
        return blocks[0]
    ids = [a for block in blocks for a in block.agent_ids]
    sizes = [n for block in blocks for n in block.sizes]
    inputs = concat_arrays([block.inputs for block in blocks])
    states = concat_arrays([block.states for block in blocks])
    if ids != sorted(ids):
        starts = np.cumsum([0, *sizes[:-1]])
        order = sorted(range(len(ids)), key=ids.__getitem__)
        rows = np.concatenate([np.arange(starts[p], starts[p] + sizes[p]) for p in order])
        inputs, states = take_rows(inputs, rows), take_rows(states, rows)
        ids, sizes = [ids[p] for p in order], [sizes[p] for p in order]
    return PredictBatch(agent_ids=ids, sizes=sizes, inputs=inputs, states=states)


def _distinct(agent_ids: int | Sequence[int], call: str) -> list[int]:
    ids = [agent_ids] if isinstance(agent_ids, int) else list(agent_ids)
    if not ids or len(set(ids)) != len(ids):
        raise ValueError(f"{call} needs distinct agent ids, got {ids}")
    return ids


class ComputationDataProcessor:
    """Serves one ComputationTask to many agents from a background thread."""

    def __init__(
        self,
        ct: ComputationTask,
        batch_wait_s: float = 0.01,
        torch_threads: int | None = None,
        learn_beside_acting: bool = False,
    ) -> None:
        if batch_wait_s < 0:
            raise ValueError(f"batch_wait_s must be >= 0, got {batch_wait_s}")
        self.ct = ct
        # learning in a thread of its own while predictions go on (see
        # flare.framework.background_learning)
        self._learner = BackgroundLearner(ct, torch_threads) if learn_beside_acting else None
        self.name = ct.name
        self.batch_wait_s = batch_wait_s
        # OpenMP's thread count is per thread: the Manager's setting does not reach this
        # thread, whose forward and backward passes would otherwise spin on every core
        self.torch_threads = torch_threads
        self.stats = CDPStats()
        self.error: str | None = None
        self._conns: dict[int, Pipe] = {}  # agent id -> its process's pipe
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # a checkpoint holds every CDP: requests are taken in but not served, so every
        # agent ends up waiting and nothing changes until ``release``
        self._hold_lock = threading.Lock()
        self._hold_id = 0  # which hold it is: a late look at an old one never counts
        self._holding = False
        self._seen_hold = -1  # the hold the thread last saw (and published the sets of)
        self._waiting: frozenset[int] = frozenset()
        self._connected: frozenset[int] = frozenset()
        # agents that join while it serves (a simulator's Act stream): their pipes wait
        # here until the thread takes them in, woken by a byte on ``_wake``
        self._open = False
        self._closed = False  # (after its thread ended: nobody joins any more)
        self._joining: list[tuple[list[int], CDPEnd]] = []
        self._inbox: list[tuple[CDPEnd, object]] = []  # (in-process agents' messages)
        self._joining_lock = threading.Lock()
        self._wake_reader, self._wake = mp.Pipe(duplex=False)

    def connect(self, agent_ids: int | Sequence[int]) -> Connection:
        """Open one pipe for the agents of one process and return their end."""
        ids = _distinct(agent_ids, "connect")
        taken = sorted(set(ids) & set(self._conns))
        if taken:
            raise ValueError(f"agent(s) {taken} already connected to CDP {self.name!r}")
        ours, theirs = mp.Pipe(duplex=True)
        for agent_id in ids:
            self._conns[agent_id] = ours
        return theirs

    def stay_open(self) -> None:
        """Keep serving while no agent is connected: agents may join later (``attach``)."""
        self._open = True

    def attach(self, agent_ids: int | Sequence[int]) -> AgentEnd:
        """``connect`` while the CDP serves, for agents of this process (an Act stream's),
        from any thread (``stay_open`` first, or it may have ended): an in-process pipe
        (``flare.framework.local_pipe``). The agents are waited for from their first
        request on, and no longer once they send ``AgentDone`` or close the pipe."""
        ids = _distinct(agent_ids, "attach")
        theirs = AgentEnd(self._post)
        ours = theirs.peer
        with self._joining_lock:
            if self._closed:
                raise CDPStopped(f"CDP {self.name!r} has stopped")
            self._joining.append((ids, ours))
        self._wake.send_bytes(b"")
        return theirs

    def _post(self, end: CDPEnd, message: object) -> None:
        """A message from an in-process agent: into the inbox, waking the thread (once
        per drain of the inbox)."""
        with self._joining_lock:
            was_empty = not self._inbox
            self._inbox.append((end, message))
        if was_empty:
            try:
                self._wake.send_bytes(b"")
            except OSError:  # (the CDP has stopped: nobody will read it)
                pass

    def _take_in_posted(self, pending: PendingRequests) -> None:
        with self._joining_lock:
            inbox, self._inbox = self._inbox, []
        for end, message in inbox:
            if message is CLOSED:
                self._drop_pipe(end)
            else:
                self._take(end, message, pending)

    def _take_in_joining(self, last: bool = False) -> None:
        with self._joining_lock:
            joining, self._joining = self._joining, []
            self._closed = self._closed or last
        for ids, conn in joining:
            for agent_id in ids:
                # (an agent joins again before its old pipe's AgentDone was read: the old
                # pipe is done with, whatever it still says)
                old = self._conns.get(agent_id)
                self._conns[agent_id] = conn
                if old is not None and old not in self._conns.values():
                    old.close()

    @property
    def num_connected(self) -> int:
        return len(self._conns)

    def hold(self) -> None:
        """Stop serving (see ``is_held``); requests still come in."""
        with self._hold_lock:
            self._hold_id += 1
            self._holding = True

    def release(self) -> None:
        with self._hold_lock:
            self._holding = False

    def is_held(self) -> bool:
        """Whether the thread has seen this ``hold`` and serves nothing until ``release``
        (``agents_waiting`` and ``agents_connected`` are then this hold's)."""
        with self._hold_lock:
            seen = self._holding and self._seen_hold == self._hold_id
        return seen or not self.is_alive()

    def agents_waiting(self) -> frozenset[int]:
        """The agents whose request waits here (up to date while held)."""
        return self._waiting

    def agents_connected(self) -> frozenset[int]:
        return self._connected

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"cdp-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close_all()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _close_all(self) -> None:
        self._take_in_joining(last=True)  # (their ends see the pipes close too)
        for conn in set(self._conns.values()):
            conn.close()
        self._conns.clear()

    def _drop(self, agent_id: int) -> None:
        """Stop waiting for an agent; close its pipe when no agent is left on it."""
        conn = self._conns.pop(agent_id, None)
        if conn is not None and conn not in self._conns.values():
            conn.close()

    def _drop_pipe(self, conn: Pipe) -> None:
        for agent_id in [a for a, c in self._conns.items() if c is conn]:
            del self._conns[agent_id]
        conn.close()

    def _receive(self, conn: Connection, pending: PendingRequests) -> None:
        """Take one message from a process's pipe into ``pending``."""
        try:
            message = conn.recv()
        except (EOFError, OSError):
            self._drop_pipe(conn)
            return
        self._take(conn, message, pending)

    def _take(self, conn: Pipe, message: object, pending: PendingRequests) -> None:
        if isinstance(message, AgentDone):
            if self._conns.get(message.agent_id) is conn:  # (not a pipe it left already)
                self._drop(message.agent_id)
        elif isinstance(message, RequestBundle):
            block = message.predict
            for agent_id in [*(block.agent_ids if block else ()), *message.learn]:
                if self._conns.get(agent_id) is not conn:
                    raise ValueError(
                        f"CDP {self.name!r} got a request for agent {agent_id} "
                        "from a pipe that does not host it"
                    )
            if block is not None:
                pending.blocks.append((conn, block))
            pending.learn.update(message.learn)
        else:
            raise TypeError(f"CDP {self.name!r} got an unknown message {message!r}")

    def _run(self) -> None:
        if self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)
        pending = PendingRequests()
        first_at = 0.0
        self._connected = frozenset(self._conns)
        try:
            while not self._stop.is_set() and (self._conns or self._open):
                with self._hold_lock:
                    holding, hold_id = self._holding, self._hold_id
                if pending and not holding:
                    timeout = max(0.0, first_at + self.batch_wait_s - time.monotonic())
                else:
                    timeout = 0.05
                pipes = [c for c in set(self._conns.values()) if isinstance(c, Connection)]
                for conn in wait([*pipes, self._wake_reader], timeout):
                    if conn is self._wake_reader:
                        self._wake_reader.recv_bytes()
                        self._take_in_joining()
                        had_pending = bool(pending)
                        self._take_in_posted(pending)
                        if pending and not had_pending:
                            first_at = time.monotonic()
                        continue
                    had_pending = bool(pending)
                    self._receive(cast(Connection, conn), pending)
                    if pending and not had_pending:
                        first_at = time.monotonic()
                # an agent that stopped while it waited gets no reply
                pending.keep_only(self._conns)
                if holding:
                    with self._hold_lock:
                        self._waiting = pending.agent_ids()
                        self._connected = frozenset(self._conns)
                        self._seen_hold = hold_id
                    continue
                if pending and (
                    len(pending) >= len(self._conns)
                    or time.monotonic() - first_at >= self.batch_wait_s
                ):
                    self._serve(pending)
                    pending = PendingRequests()
        except Exception:
            if (
                not self._stop.is_set()
            ):  # errors caused by stop() closing the pipes are not failures
                self.error = f"in ComputationTask {self.name!r}:\n{traceback.format_exc()}"
                logger.debug("CDP %s failed", self.name, exc_info=True)
        finally:
            self._finish_learning()
            # Closing the pipes wakes every agent still waiting, so none can hang.
            self._close_all()
            self._waiting = self._connected = frozenset()

    def _finish_learning(self) -> None:
        """The last update in flight is part of the run (its weights are saved)."""
        if self._learner is None:
            return
        try:
            self._learner.close()
        except Exception:
            if self.error is None:
                self.error = f"in ComputationTask {self.name!r}:\n{traceback.format_exc()}"

    def _serve(self, pending: PendingRequests) -> None:
        # In agent order, not arrival order: with every agent in the batch, a seeded run
        # then samples the same actions whatever the machine's timing.
        bundles: dict[Pipe, ReplyBundle] = {}  # one message per agent process
        if pending.learn and self._learner is not None:
            by_agent = {agent_id: r.batch for agent_id, r in pending.learn.items()}
            earlier = self._learner.start(by_agent)  # (replies now; costs come one learn late)
            for agent_id in sorted(by_agent):
                bundle = bundles.setdefault(self._conns[agent_id], ReplyBundle())
                bundle.learn[agent_id] = LearnReply(earlier.get(agent_id, {}))
            self.stats.learn_calls += 1
            self.stats.learn_instances += sum(b.size for b in by_agent.values())
        elif pending.learn:
            learners = sorted(pending.learn.items())
            batches = [r.batch for _, r in learners]
            costs = self.ct.learn(LearnBatch.concat(batches))
            sizes = [b.size for b in batches]
            for (agent_id, _), part in zip(learners, split_arrays(costs, sizes), strict=True):
                bundle = bundles.setdefault(self._conns[agent_id], ReplyBundle())
                bundle.learn[agent_id] = LearnReply(part)
            self.stats.learn_calls += 1
            self.stats.learn_instances += sum(sizes)
        if pending.blocks:
            batch = stack_blocks([block for _, block in pending.blocks])
            actions, states, behavior = self.ct.predict(batch.inputs, batch.states)
            # each process gets its agents' rows stacked, not one reply per agent
            starts = np.cumsum([0, *batch.sizes[:-1]])
            positions: dict[Pipe, list[int]] = {}
            for position, agent_id in enumerate(batch.agent_ids):
                positions.setdefault(self._conns[agent_id], []).append(position)
            for conn, mine in positions.items():
                rows = np.concatenate(
                    [np.arange(starts[p], starts[p] + batch.sizes[p]) for p in mine]
                )
                bundles.setdefault(conn, ReplyBundle()).predict = PredictReplyBatch(
                    agent_ids=[batch.agent_ids[p] for p in mine],
                    sizes=[batch.sizes[p] for p in mine],
                    actions=take_rows(actions, rows),
                    states=take_rows(states, rows),
                    behavior=take_rows(behavior, rows),
                )
            self.stats.predict_calls += 1
            self.stats.predict_instances += sum(batch.sizes)
        for conn, bundle in bundles.items():
            try:
                conn.send(bundle)
            except (OSError, BrokenPipeError):
                self._drop_pipe(conn)
