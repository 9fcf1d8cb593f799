"""Envs hosted in worker processes: StepMany on several cores, and crash isolation.

Each worker runs the very same ``Session`` code the server process would, behind a
pipe; the server process keeps only proxies (``WorkerSession``: id, spec, idle time).
A StepMany call sends every worker its rows before it waits for any, so the workers
step in parallel. A worker that dies (say, a segfault in a native simulator) costs
the sessions it hosted, never the server.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import grpc
import numpy as np

from flare.bridge.errors import SimulatorError, quoted
from flare.bridge.request_validation import SpecChecks
from flare.bridge.session import Session, StepResult, WireCalls, not_running, open_session
from flare.bridge.step_many import BatchResult, merge_batches, step_sessions
from flare.framework.env import Env
from flare.framework.env_spec import EnvSpec

logger = logging.getLogger(__name__)


# ----- inside a worker process ------------------------------------------------------------
def _worker_main(conn: Connection, env_factory: Callable[..., Env]) -> None:
    """Serve requests from the server process until it closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    _keep_descriptors_from_children(conn)
    sessions: dict[str, Session] = {}
    try:
        while True:
            try:
                op, args = conn.recv()
            except EOFError:
                return
            try:
                reply = (True, _run(op, args, sessions, env_factory))
            except SimulatorError as err:
                reply = (False, (err.code.name, err.message))
            except Exception as err:  # noqa: BLE001 - report it; the worker lives on
                reply = (False, ("INTERNAL", f"{type(err).__name__}: {err}"))
            try:
                conn.send(reply)
            except Exception as err:  # noqa: BLE001 - e.g. an env returned something unpicklable
                conn.send((False, ("INTERNAL", f"the reply could not be sent: {err}")))
    finally:
        for session in sessions.values():
            session.close()


def _keep_descriptors_from_children(conn: Connection) -> None:
    """Make the worker's inherited descriptors (its pipe to the server, the spawn
    sentinel) close on exec.

    A simulator may start processes of its own (ViZDoom's engine is one) and let them
    inherit every descriptor; were the pipe among them, a worker's death would never
    reach the server as an end of file, and its sessions would hang instead of failing.
    """
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # (no /proc: at least the pipe)
        descriptors = [conn.fileno()]
    for descriptor in descriptors:
        if descriptor > 2:
            try:
                os.set_inheritable(descriptor, False)
            except OSError:  # (e.g. the directory listing's own, closed by now)
                pass


def _run(op: str, args: tuple, sessions: dict[str, Session], env_factory) -> Any:
    if op == "open":
        session_id, config, seed = args
        session = open_session(env_factory, session_id, config, seed)
        sessions[session_id] = session
        return session.spec
    if op == "close":
        closing = sessions.pop(args[0], None)
        if closing is not None:
            closing.close()
        return None
    if op == "step_many":
        ids, actions, actrep, auto_reset, rows = args
        hosted = [_hosted(sessions, i) for i in ids]
        return step_sessions(hosted, actions, actrep, auto_reset, rows)
    session = _hosted(sessions, args[0])
    if op == "reset":
        return session.reset_arrays(args[1])
    if op == "step":
        return session.step_arrays(args[1], args[2])
    raise ValueError(f"unknown worker operation {op!r}")


def _hosted(sessions: dict[str, Session], session_id: str) -> Session:
    try:
        return sessions[session_id]
    except KeyError:  # closed (or reaped) while the request was on its way
        raise SimulatorError(
            grpc.StatusCode.NOT_FOUND, f"no session {quoted(session_id)}"
        ) from None


# ----- in the server process --------------------------------------------------------------
class EnvWorker:
    """One worker process and the pipe to it. One request at a time: hold ``lock``
    around ``send`` + ``receive`` (``call`` does both)."""

    # how often a wait for a reply checks that the worker still lives: its death is
    # normally an end of file on the pipe, but a process the worker started may hold
    # the pipe open (one started before the worker made its descriptors close on exec)
    POLL_S = 1.0

    def __init__(self, context, env_factory: Callable[..., Env], index: int) -> None:
        self.index = index
        self._conn, child_conn = context.Pipe()
        self.process = context.Process(
            target=_worker_main,
            args=(child_conn, env_factory),
            name=f"flare-env-worker-{index}",
            daemon=True,
        )
        self.process.start()
        child_conn.close()
        self.lock = threading.Lock()
        self.num_sessions = 0
        self.dead = False

    def send(self, op: str, *args: Any) -> None:
        if self.dead:
            raise self._lost()
        try:
            self._conn.send((op, args))
        except Exception:
            self._out_of_step()  # a half-sent request: the pipe can no longer be trusted
            raise self._lost() from None

    def receive(self) -> Any:
        try:
            while not self._conn.poll(self.POLL_S):  # (a dead worker's pipe may stay open)
                if not self.process.is_alive():
                    raise EOFError(f"env worker {self.index} exited")
            ok, value = self._conn.recv()
        except Exception:
            self._out_of_step()  # its answer is lost: the next one would be misread
            raise self._lost() from None
        if ok:
            return value
        code, message = value
        raise SimulatorError(grpc.StatusCode[code], message)

    def call(self, op: str, *args: Any) -> Any:
        with self.lock:
            self.send(op, *args)
            return self.receive()

    def _out_of_step(self) -> None:
        """Requests and replies no longer pair up: end the worker (its sessions are lost)."""
        self.dead = True
        if self.process.is_alive():
            self.process.kill()

    def _lost(self) -> SimulatorError:
        self.process.join(timeout=1)
        return SimulatorError(
            grpc.StatusCode.INTERNAL,
            f"env worker process {self.index} (pid {self.process.pid}) died with exit code "
            f"{self.process.exitcode}; the sessions it hosted are lost",
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the pipe (the worker closes its envs and exits); kill it if it hangs."""
        self._conn.close()
        self.process.join(timeout_s)
        if self.process.is_alive():
            logger.warning("env worker %d did not exit; killing it", self.index)
            self.process.kill()
            self.process.join(timeout_s)
        self.dead = True


class WorkerSession(WireCalls):
    """A session whose Env lives in a worker process; the ``Session`` calls, by proxy."""

    def __init__(self, session_id: str, worker: EnvWorker, spec: EnvSpec) -> None:
        self.id = session_id
        self.worker = worker
        self.spec = spec
        self.checks = SpecChecks.of(spec)
        self.last_used = time.monotonic()
        self._closed = False
        # the worker's episode state, mirrored here so StepMany can check every row before
        # it sends any; True when unknown (after an error), leaving the worker to decide
        self._episode_running = False

    @property
    def closed(self) -> bool:
        return self._closed or self.worker.dead

    def touch(self) -> None:
        if self._closed:
            raise SimulatorError(
                grpc.StatusCode.NOT_FOUND, f"session {self.id} was closed (idle past the timeout)"
            )
        if self.worker.dead:
            raise SimulatorError(
                grpc.StatusCode.NOT_FOUND,
                f"session {self.id} was lost: its env worker process died",
            )
        self.last_used = time.monotonic()

    def check_running(self) -> None:
        self.touch()
        if not self._episode_running:
            raise not_running(self.id)

    def reset_arrays(self, seed: int | None = None) -> dict[str, np.ndarray]:
        self.touch()
        self._episode_running = True  # (unknown until the answer; see __init__)
        return self.worker.call("reset", self.id, seed)

    def step_arrays(self, actions: dict[str, np.ndarray], actrep: int) -> StepResult:
        self.touch()
        self._episode_running = True
        result = self.worker.call("step", self.id, actions, actrep)
        self._episode_running = not (result.game_over or result.time_out)
        return result

    def stepped(self, game_over: int, time_out: bool, was_reset: bool) -> None:
        """A StepMany row's outcome, for the mirror of the episode state."""
        self._episode_running = was_reset or not (game_over or time_out)

    def forget_episode_state(self) -> None:
        """A StepMany that failed part-way: whether this row stepped is unknown, so the
        worker's own check decides next time."""
        self._episode_running = True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.worker.num_sessions -= 1
        if not self.worker.dead:
            try:
                self.worker.call("close", self.id)
            except SimulatorError:
                pass  # the worker died meanwhile: its envs are gone anyway


class WorkerPool:
    """``processes`` env workers; new sessions go to the least loaded one."""

    def __init__(self, env_factory: Callable[..., Env], processes: int) -> None:
        if processes < 1:
            raise ValueError(f"a worker pool needs >= 1 process, got {processes}")
        try:
            pickle.dumps(env_factory)
        except Exception as err:  # noqa: BLE001 - pickling raises many types
            raise ValueError(
                "env_processes > 0 needs a picklable env factory (a module-level function "
                f"or class, not a lambda or closure); {env_factory!r} is not: {err}"
            ) from err
        self._env_factory = env_factory
        self._context = multiprocessing.get_context("spawn")  # never fork a gRPC process
        self._lock = threading.Lock()
        self.workers: list[EnvWorker] = []
        try:
            for index in range(processes):
                self.workers.append(EnvWorker(self._context, env_factory, index))
        except BaseException:
            self.stop()
            raise

    def open(self, session_id: str, config: dict[str, str], seed: int | None) -> WorkerSession:
        with self._lock:
            for index, worker in enumerate(self.workers):
                if worker.dead:
                    logger.warning("env worker %d died; starting a new one", index)
                    worker.stop(timeout_s=1)
                    self.workers[index] = EnvWorker(self._context, self._env_factory, index)
            worker = min(self.workers, key=lambda w: w.num_sessions)
            worker.num_sessions += 1
        try:
            spec = worker.call("open", session_id, config, seed)
        except BaseException:
            with self._lock:
                worker.num_sessions -= 1
            raise
        return WorkerSession(session_id, worker, spec)

    def step_many(
        self,
        sessions: Sequence[WorkerSession],
        actions: dict[str, np.ndarray],
        actrep: int,
        auto_reset: bool,
    ) -> BatchResult:
        """Step every session, each worker its own rows, all workers at once."""
        groups: dict[EnvWorker, list[int]] = {}
        for row, session in enumerate(sessions):
            session.touch()
            groups.setdefault(session.worker, []).append(row)
        workers = sorted(groups, key=lambda w: w.index)  # one lock order: no deadlock
        for worker in workers:
            worker.lock.acquire()
        try:
            sent, error = [], None
            for worker in workers:
                rows = groups[worker]
                try:
                    worker.send(
                        "step_many",
                        [sessions[row].id for row in rows],
                        {name: batch[rows] for name, batch in actions.items()},
                        actrep,
                        auto_reset,
                        rows,
                    )
                    sent.append(worker)
                except SimulatorError as err:
                    error = error or err
            parts = []
            for worker in sent:  # every worker that got rows answers, even after an error
                try:
                    parts.append((groups[worker], worker.receive()))
                except SimulatorError as err:
                    error = error or err
        finally:
            for worker in workers:
                worker.lock.release()
        if error is not None:
            for session in sessions:
                session.forget_episode_state()
            raise error
        merged = merge_batches(len(sessions), parts)
        resets = set(merged.reset_rows)
        for row, session in enumerate(sessions):
            session.stepped(int(merged.game_over[row]), bool(merged.time_out[row]), row in resets)
        return merged

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
