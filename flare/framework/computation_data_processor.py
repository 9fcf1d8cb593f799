"""ComputationDataProcessor (CDP): batches many agents' requests for one ComputationTask.

Each agent talks to a CDP over its own pipe and has at most one request in flight. The
CDP's thread gathers requests until every connected agent is waiting, or until
``batch_wait_s`` has passed since the first one arrived (so one slow agent, or an agent
busy with another CT, never stalls the rest), then runs one batched ``learn`` and one
batched ``predict`` and routes each slice of the results back to the agent that asked.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from flare.framework.batch import (
    AgentDone,
    LearnBatch,
    LearnReply,
    LearnRequest,
    PredictReply,
    PredictRequest,
    concat_arrays,
    split_arrays,
)
from flare.framework.computation_task import ComputationTask

logger = logging.getLogger(__name__)

Request = PredictRequest | LearnRequest


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
        self._conns: dict[int, Connection] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def connect(self, agent_id: int) -> Connection:
        """Open a pipe for one agent and return the agent's end."""
        if agent_id in self._conns:
            raise ValueError(f"agent {agent_id} is already connected to CDP {self.name!r}")
        ours, theirs = mp.get_context("fork").Pipe(duplex=True)
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
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def _drop(self, agent_id: int) -> None:
        conn = self._conns.pop(agent_id, None)
        if conn is not None:
            conn.close()

    def _run(self) -> None:
        pending: dict[int, Request] = {}
        first_at = 0.0
        try:
            while not self._stop.is_set() and self._conns:
                if pending:
                    timeout = max(0.0, first_at + self.batch_wait_s - time.monotonic())
                else:
                    timeout = 0.05
                owner = {conn: aid for aid, conn in self._conns.items()}
                for conn in wait(list(owner), timeout):
                    agent_id = owner[conn]
                    try:
                        message = conn.recv()
                    except (EOFError, OSError):
                        self._drop(agent_id)
                        continue
                    if isinstance(message, AgentDone):
                        self._drop(agent_id)
                    elif isinstance(message, PredictRequest | LearnRequest):
                        if not pending:
                            first_at = time.monotonic()
                        pending[agent_id] = message
                    else:
                        raise TypeError(f"CDP {self.name!r} got an unknown message {message!r}")
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
        learners = [(a, r) for a, r in ordered if isinstance(r, LearnRequest)]
        predictors = [(a, r) for a, r in ordered if isinstance(r, PredictRequest)]
        if learners:
            batches = [r.batch for _, r in learners]
            costs = self.ct.learn(LearnBatch.concat(batches))
            sizes = [b.size for b in batches]
            for (agent_id, _), part in zip(learners, split_arrays(costs, sizes), strict=True):
                self._reply(agent_id, LearnReply(part))
            self.stats.learn_calls += 1
            self.stats.learn_instances += sum(sizes)
        if predictors:
            requests = [r for _, r in predictors]
            sizes = [len(next(iter(r.inputs.values()))) for r in requests]
            actions, states, behavior = self.ct.predict(
                concat_arrays([r.inputs for r in requests]),
                concat_arrays([r.states for r in requests]),
            )
            parts = zip(
                split_arrays(actions, sizes),
                split_arrays(states, sizes),
                split_arrays(behavior, sizes),
                strict=True,
            )
            for (agent_id, _), (acts, sts, behav) in zip(predictors, parts, strict=True):
                self._reply(agent_id, PredictReply(acts, sts, behav))
            self.stats.predict_calls += 1
            self.stats.predict_instances += sum(sizes)

    def _reply(self, agent_id: int, reply: PredictReply | LearnReply) -> None:
        conn = self._conns.get(agent_id)
        if conn is None:
            return
        try:
            conn.send(reply)
        except (OSError, BrokenPipeError):
            self._drop(agent_id)
