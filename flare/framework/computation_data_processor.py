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
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

import numpy as np

from flare.framework.batch import (
    AgentDone,
    LearnBatch,
    LearnReply,
    LearnRequest,
    PredictReplyBatch,
    PredictRequest,
    ReplyBundle,
    Request,
    RequestBundle,
    concat_arrays,
    split_arrays,
    take_rows,
)
from flare.framework.computation_task import ComputationTask

logger = logging.getLogger(__name__)


@dataclass
class CDPStats:
    """How well batching works: calls made and instances served."""

    predict_calls: int = 0
    predict_instances: int = 0
    learn_calls: int = 0
    learn_instances: int = 0


class ComputationDataProcessor:
    """Serves one ComputationTask to many agents from a background thread."""

    def __init__(self, ct: ComputationTask, batch_wait_s: float = 0.01) -> None:
        if batch_wait_s < 0:
            raise ValueError(f"batch_wait_s must be >= 0, got {batch_wait_s}")
        self.ct = ct
        self.name = ct.name
        self.batch_wait_s = batch_wait_s
        self.stats = CDPStats()
        self.error: str | None = None
        self._conns: dict[int, Connection] = {}  # agent id -> its process's pipe
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def connect(self, agent_ids: int | Sequence[int]) -> Connection:
        """Open one pipe for the agents of one process and return their end."""
        ids = [agent_ids] if isinstance(agent_ids, int) else list(agent_ids)
        if not ids or len(set(ids)) != len(ids):
            raise ValueError(f"connect needs distinct agent ids, got {ids}")
        taken = sorted(set(ids) & set(self._conns))
        if taken:
            raise ValueError(f"agent(s) {taken} already connected to CDP {self.name!r}")
        ours, theirs = mp.Pipe(duplex=True)
        for agent_id in ids:
            self._conns[agent_id] = ours
        return theirs

    @property
    def num_connected(self) -> int:
        return len(self._conns)

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
        for conn in set(self._conns.values()):
            conn.close()
        self._conns.clear()

    def _drop(self, agent_id: int) -> None:
        """Stop waiting for an agent; close its pipe when no agent is left on it."""
        conn = self._conns.pop(agent_id, None)
        if conn is not None and conn not in self._conns.values():
            conn.close()

    def _drop_pipe(self, conn: Connection) -> None:
        for agent_id in [a for a, c in self._conns.items() if c is conn]:
            del self._conns[agent_id]
        conn.close()

    def _receive(self, conn: Connection, pending: dict[int, Request]) -> None:
        """Take one message from a process's pipe into ``pending``."""
        try:
            message = conn.recv()
        except (EOFError, OSError):
            self._drop_pipe(conn)
            return
        if isinstance(message, AgentDone):
            self._drop(message.agent_id)
        elif isinstance(message, RequestBundle):
            for agent_id, request in message.requests().items():
                if self._conns.get(agent_id) is not conn:
                    raise ValueError(
                        f"CDP {self.name!r} got a request for agent {agent_id} "
                        "from a pipe that does not host it"
                    )
                pending[agent_id] = request
        else:
            raise TypeError(f"CDP {self.name!r} got an unknown message {message!r}")

    def _run(self) -> None:
        pending: dict[int, Request] = {}
        first_at = 0.0
        try:
            while not self._stop.is_set() and self._conns:
                if pending:
                    timeout = max(0.0, first_at + self.batch_wait_s - time.monotonic())
                else:
                    timeout = 0.05
                for conn in wait(list(set(self._conns.values())), timeout):
                    had_pending = bool(pending)
                    self._receive(conn, pending)
                    if pending and not had_pending:
                        first_at = time.monotonic()
                # an agent that stopped while it waited gets no reply
                pending = {a: r for a, r in pending.items() if a in self._conns}
                if pending and (
                    len(pending) >= len(self._conns)
                    or time.monotonic() - first_at >= self.batch_wait_s
                ):
                    self._serve(pending)
                    pending = {}
        except Exception:
            if (
                not self._stop.is_set()
            ):  # errors caused by stop() closing the pipes are not failures
                self.error = f"in ComputationTask {self.name!r}:\n{traceback.format_exc()}"
                logger.debug("CDP %s failed", self.name, exc_info=True)
        finally:
            # Closing the pipes wakes every agent still waiting, so none can hang.
            self._close_all()

    def _serve(self, pending: dict[int, Request]) -> None:
        # In agent order, not arrival order: with every agent in the batch, a seeded run
        # then samples the same actions whatever the machine's timing.
        ordered = sorted(pending.items())
        bundles: dict[Connection, ReplyBundle] = {}  # one message per agent process
        learners = [(a, r) for a, r in ordered if isinstance(r, LearnRequest)]
        predictors = [(a, r) for a, r in ordered if isinstance(r, PredictRequest)]
        if learners:
            batches = [r.batch for _, r in learners]
            costs = self.ct.learn(LearnBatch.concat(batches))
            sizes = [b.size for b in batches]
            for (agent_id, _), part in zip(learners, split_arrays(costs, sizes), strict=True):
                bundle = bundles.setdefault(self._conns[agent_id], ReplyBundle())
                bundle.learn[agent_id] = LearnReply(part)
            self.stats.learn_calls += 1
            self.stats.learn_instances += sum(sizes)
        if predictors:
            requests = [r for _, r in predictors]
            sizes = [len(next(iter(r.inputs.values()))) for r in requests]
            actions, states, behavior = self.ct.predict(
                concat_arrays([r.inputs for r in requests]),
                concat_arrays([r.states for r in requests]),
            )
            # each process gets its agents' rows stacked, not one reply per agent
            starts = np.cumsum([0, *sizes[:-1]])
            positions: dict[Connection, list[int]] = {}
            for position, (agent_id, _) in enumerate(predictors):
                positions.setdefault(self._conns[agent_id], []).append(position)
            for conn, mine in positions.items():
                rows = np.concatenate([np.arange(starts[p], starts[p] + sizes[p]) for p in mine])
                bundles.setdefault(conn, ReplyBundle()).predict = PredictReplyBatch(
                    agent_ids=[predictors[p][0] for p in mine],
                    sizes=[sizes[p] for p in mine],
                    actions=take_rows(actions, rows),
                    states=take_rows(states, rows),
                    behavior=take_rows(behavior, rows),
                )
            self.stats.predict_calls += 1
            self.stats.predict_instances += sum(sizes)
        for conn, bundle in bundles.items():
            try:
                conn.send(bundle)
            except (OSError, BrokenPipeError):
                self._drop_pipe(conn)
