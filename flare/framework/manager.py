"""Manager: builds CTs and CDPs from ``ct_settings``, runs the agents, logs and checkpoints."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from flare.common.metrics import MetricsLogger
from flare.framework.agent import Agent
from flare.framework.agent_group import run_agent_process
from flare.framework.cdp_channel import CDPChannel, CDPLink
from flare.framework.computation_data_processor import ComputationDataProcessor
from flare.framework.computation_task import build_computation_tasks
from flare.framework.process_start import agent_context, process_payload, resolve_start_method
from flare.framework.reports import (
    AgentFailed,
    AgentFinished,
    EnvMismatch,
    GameInterrupted,
    GameRecord,
    ProcessReady,
)
from flare.framework.settings import CTSettings, LogSettings

logger = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """An agent, an environment or an algorithm failed; the message holds its traceback."""


class Manager:
    """Runs agents in parallel processes against shared ComputationTasks.

    Args:
        ct_settings: ``{ct_name: dict(algorithm=..., agent_helper=..., **helper settings)}``.
        log_settings: see ``LogSettings`` (``log_dir``, ``model_dir``, ``load_model``, ...).
        torch_threads: PyTorch's intra-op threads in the learner process while it runs
            (1 by default: the agents' processes need the cores, and idle OpenMP threads
            spin on them; raise it for big models). ``None`` leaves PyTorch's setting.
        agents_per_process: how many agents share one process (1 by default: every agent
            steps its env in parallel with the others). Agents that share a process step
            their envs one after another but ask their CTs together, one pipe round trip
            per step for all of them: raise it when env steps are cheap and the number of
            agents exceeds the cores (CartPole on 2 cores: 4).
        start_method: how agent processes start: ``"fork"``, ``"forkserver"`` (a fresh
            interpreter forks them; agents travel through cloudpickle) or ``"auto"`` (the
            default): fork unless this process has loaded gRPC, whose threads and
            connections a forked child must not inherit (a ``RemoteEnv`` opened here to
            read the dims, an in-process simulator server).

    After ``start()`` returns, ``stats`` holds one ``GameRecord`` per finished game.
    """

    def __init__(
        self,
        ct_settings: dict[str, dict[str, Any]],
        log_settings: dict[str, Any] | None = None,
        torch_threads: int | None = 1,
        agents_per_process: int = 1,
        start_method: str = "auto",
    ) -> None:
        if torch_threads is not None and torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1 or None, got {torch_threads}")
        if agents_per_process < 1:
            raise ValueError(f"agents_per_process must be >= 1, got {agents_per_process}")
        self.torch_threads = torch_threads
        self.agents_per_process = agents_per_process
        resolve_start_method(start_method)  # a bad name fails here, not at start()
        self.start_method = start_method
        if not isinstance(ct_settings, dict) or not ct_settings:
            raise ValueError("ct_settings must be a non-empty dict {ct_name: settings}")
        self.settings = {name: CTSettings.from_dict(name, s) for name, s in ct_settings.items()}
        self.log_settings = LogSettings.from_dict(log_settings)
        self.cts = build_computation_tasks({n: s.algorithm for n, s in self.settings.items()})
        self.agents: list[Agent] = []
        self.stats: list[GameRecord] = []
        self.stopped_by_signal: str | None = None
        self.reached_target = False
        self.interrupted_games = 0
        self._signal_received: int | None = None
        self._started = False
        load_dir = self.log_settings.load_dir()
        if load_dir is not None:
            self.load_model(load_dir)

    # ----- agents -------------------------------------------------------------------------
    def add_agent(self, agent: Agent) -> None:
        if not isinstance(agent, Agent):
            raise TypeError(f"add_agent needs a flare Agent, got {type(agent).__name__}")
        if self._started:
            raise RuntimeError("agents must be added before start()")
        if any(a is agent for a in self.agents):
            raise ValueError(f"agent {agent.id} was already added")
        agent.id = len(self.agents)
        self.agents.append(agent)

    def add_agents(self, agents: Iterable[Agent]) -> None:
        for agent in agents:
            self.add_agent(agent)

    # ----- checkpoints --------------------------------------------------------------------
    def save_model(self, model_dir: str | Path | None = None) -> list[Path]:
        """Save every CT's algorithm (model and optimizer) to ``model_dir/<ct>.pt``."""
        directory = Path(model_dir or self.log_settings.model_dir or ".")
        directory.mkdir(parents=True, exist_ok=True)
        saved = []
        for name, ct in self.cts.items():
            path = directory / f"{name}.pt"
            tmp = path.with_suffix(".pt.tmp")
            torch.save({"ct": name, "games": len(self.stats), "algorithm": ct.state_dict()}, tmp)
            os.replace(tmp, path)  # never leave a half-written checkpoint
            saved.append(path)
        return saved

    def load_model(self, model_dir: str | Path) -> None:
        directory = Path(model_dir)
        for name, ct in self.cts.items():
            path = directory / f"{name}.pt"
            if not path.exists():
                raise FileNotFoundError(f"no checkpoint for CT {name!r}: {path} does not exist")
            checkpoint = torch.load(path, map_location=ct.alg.device, weights_only=True)
            ct.load_state_dict(checkpoint["algorithm"])
            logger.info("loaded CT %r from %s", name, path)

    # ----- running ------------------------------------------------------------------------
    def _check_ready(self) -> None:
        if self._started:
            raise RuntimeError("a Manager runs once; build a new one for another run")
        if not self.agents:
            raise RuntimeError("no agents: call add_agent()/add_agents() before start()")
        for agent in self.agents:
            if agent._env_factory is None:
                raise RuntimeError(f"agent {agent.id} has no environment: call agent.set_env()")
        for name, settings in self.settings.items():
            if settings.num_agents is not None and len(self.agents) > settings.num_agents:
                raise ValueError(
                    f"ct_settings[{name!r}]['num_agents'] is {settings.num_agents} but "
                    f"{len(self.agents)} agents were added"
                )

    def start(
        self,
        stop_at_mean_return: float | None = None,
        stop_at_success_rate: float | None = None,
    ) -> None:
        """Run every agent to the end of its games (or until Ctrl-C / SIGTERM / a failure).

        With ``stop_at_mean_return``, the run also stops as soon as the mean return of the
        last ``window`` games (a full window) reaches it; with ``stop_at_success_rate``, as
        soon as that share of them ended in success (``game_over`` 1). ``reached_target``
        then says so.

        Raises ``TrainingError`` with the original traceback if an agent, its environment or
        an algorithm fails; the other agents are stopped first and no process is left behind.
        """
        self._check_ready()
        self._started = True
        ctx = agent_context(resolve_start_method(self.start_method))
        stop_event = ctx.Event()
        go = ctx.Event()  # set once every agent process is ready to send its first requests
        reports: mp.Queue = ctx.Queue()
        cdps = {
            name: ComputationDataProcessor(self.cts[name], s.batch_wait_s, self.torch_threads)
            for name, s in self.settings.items()
        }
        metrics = MetricsLogger(
            self.log_settings.log_dir, self.log_settings.print_interval_s, self.log_settings.window
        )
        self._start_time = metrics.start
        processes: dict[int, mp.process.BaseProcess] = {}
        previous_handlers = self._install_signal_handlers()
        previous_threads = torch.get_num_threads()
        if self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)
        failure: str | None = None
        try:
            size = self.agents_per_process
            for first in range(0, len(self.agents), size):
                group = self.agents[first : first + size]
                process = self._start_agent_process(group, cdps, ctx, stop_event, go, reports)
                for agent in group:
                    processes[agent.id] = process
            for cdp in cdps.values():
                cdp.start()
            failure = self._supervise(
                processes, reports, cdps, metrics, go, stop_at_mean_return, stop_at_success_rate
            )
        finally:
            stop_event.set()
            failure = self._shutdown(processes, reports, cdps, metrics) or failure
            self._restore_signal_handlers(previous_handlers)
            torch.set_num_threads(previous_threads)
            metrics.maybe_print(force=True)
            metrics.close()
            if self.log_settings.model_dir:
                for path in self.save_model():
                    logger.info("saved %s", path)
        if self._signal_received is not None:
            self.stopped_by_signal = signal.Signals(self._signal_received).name
            logger.warning("stopped by %s after %d games", self.stopped_by_signal, len(self.stats))
        if failure:
            raise TrainingError(failure)

    def _start_agent_process(
        self,
        group: list[Agent],
        cdps: dict[str, ComputationDataProcessor],
        ctx: Any,
        stop_event: Any,
        go: Any,
        reports: mp.Queue,
    ) -> mp.process.BaseProcess:
        """Start one process for ``group``: one pipe per CT, shared by its agents."""
        ids = [agent.id for agent in group]
        links = [CDPLink(cdps[name].connect(ids), ids) for name in self.settings]
        for agent in group:
            agent.helpers = {}
            for (name, settings), link in zip(self.settings.items(), links, strict=True):
                channel = CDPChannel(link, agent.id)
                helper = settings.agent_helper(name, channel, **settings.helper_kwargs)
                ct = self.cts[name]
                helper.bind(
                    ct.keys,
                    seed=agent.id,
                    state_specs=ct.alg.state_specs,
                    input_specs=ct.alg.input_specs,
                )
                agent.add_agent_helper(helper)
        process = ctx.Process(
            target=run_agent_process,
            args=(process_payload(group, ctx), stop_event, reports, go),
            name=f"flare-agents-{ids[0]}" + (f"-{ids[-1]}" if len(ids) > 1 else ""),
            daemon=True,
        )
        process.start()
        for link in links:  # the agents' process owns them now
            link.connection.close()
        return process

    def _supervise(
        self,
        processes: dict[int, mp.process.BaseProcess],
        reports: mp.Queue,
        cdps: dict[str, ComputationDataProcessor],
        metrics: MetricsLogger,
        go: Any,
        stop_at_mean_return: float | None,
        stop_at_success_rate: float | None,
    ) -> str | None:
        """Collect reports until every agent is done; returns a failure message, if any.

        Sets ``go`` once every agent still running is in a process that is ready: the
        first batches are then full however long the processes took to start.
        """
        running = set(processes)
        starting = set(processes)
        while running:
            if not go.is_set() and not starting & running:
                go.set()
            if self._signal_received is not None:
                return None
            full = len(metrics.returns) == metrics.returns.maxlen
            if full and (
                (stop_at_mean_return is not None and metrics.mean_return >= stop_at_mean_return)
                or (
                    stop_at_success_rate is not None
                    and metrics.success_rate >= stop_at_success_rate
                )
            ):
                self.reached_target = True
                return None
            try:
                report = reports.get(timeout=0.1)
            except queue.Empty:
                report = None
            if isinstance(report, ProcessReady):
                starting.difference_update(report.agents)
            elif report is not None:
                failure = self._handle_report(report, running, metrics)
                if failure:
                    return failure
            for cdp in cdps.values():
                if cdp.error:
                    return cdp.error
            dead = [aid for aid in running if not processes[aid].is_alive()]
            if dead:
                # A process flushes its reports before it exits: read them all, then judge.
                failure = self._drain(reports, running, metrics)
                if failure:
                    return failure
                for agent_id in dead:
                    if agent_id in running:
                        code = processes[agent_id].exitcode
                        return f"agent {agent_id} died without reporting (exit code {code})"
            metrics.maybe_print()
        return None

    def _handle_report(
        self, report: object, running: set[int], metrics: MetricsLogger
    ) -> str | None:
        if isinstance(report, GameRecord):
            record = dataclasses.replace(
                report, game=len(self.stats), wall_s=time.time() - self._start_time
            )
            self.stats.append(record)
            metrics.record(record)
            interval = self.log_settings.model_save_interval
            if interval and len(self.stats) % interval == 0:
                self.save_model()
        elif isinstance(report, GameInterrupted):
            self.interrupted_games += 1
            logger.warning("agent %d: episode interrupted: %s", report.agent, report.reason)
        elif isinstance(report, AgentFinished):
            running.discard(report.agent)
        elif isinstance(report, AgentFailed):
            running.discard(report.agent)
            return f"agent {report.agent} failed:\n{report.traceback}"
        elif isinstance(report, EnvMismatch):
            running.discard(report.agent)
            return report.message
        return None

    def _drain(self, reports: mp.Queue, running: set[int], metrics: MetricsLogger) -> str | None:
        """Handle every report already queued; returns the first failure among them."""
        failure = None
        while True:
            try:
                report = reports.get_nowait()
            except queue.Empty:
                return failure
            failure = failure or self._handle_report(report, running, metrics)

    def _shutdown(
        self,
        processes: dict[int, mp.process.BaseProcess],
        reports: mp.Queue,
        cdps: dict[str, ComputationDataProcessor],
        metrics: MetricsLogger,
    ) -> str | None:
        """Let agents finish their step, then make sure no process is left; stop the CDPs."""
        failure = None
        deadline = time.monotonic() + self.log_settings.stop_timeout_s
        running = {aid for aid, p in processes.items() if p.is_alive()}
        unique = list({id(p): p for p in processes.values()}.values())  # one per agent group
        while any(p.is_alive() for p in unique) and time.monotonic() < deadline:
            try:  # keep draining, so no agent blocks on a full queue
                report = reports.get(timeout=0.05)
                failure = failure or self._handle_report(report, running, metrics)
            except queue.Empty:
                pass
        for process in unique:
            if process.is_alive():
                logger.warning("agent process %s did not stop in time; terminating", process.name)
                process.terminate()
        for process in unique:
            process.join(2.0)
            if process.is_alive():
                process.kill()
                process.join()
        # records that arrived during the stop still count
        failure = failure or self._drain(reports, running, metrics)
        reports.close()
        for cdp in cdps.values():
            cdp.stop()
            failure = failure or cdp.error
        return failure

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        self._signal_received = None

        def on_signal(signum: int, frame: object) -> None:
            self._signal_received = signum

        return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
