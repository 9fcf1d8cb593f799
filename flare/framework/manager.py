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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from flare.common.metrics import MetricsLogger
from flare.framework.agent import Agent
from flare.framework.agent_group import run_agent_process
from flare.framework.cdp_channel import CDPChannel, CDPLink
from flare.framework.checkpoint_requests import CheckpointRequests
from flare.framework.computation_data_processor import ComputationDataProcessor
from flare.framework.computation_task import build_computation_tasks
from flare.framework.external_agents import DetachedChannel, ExternalAgents
from flare.framework.process_control import AgentsSaved
from flare.framework.process_start import agent_context, process_payload, resolve_start_method
from flare.framework.reports import (
    AgentFailed,
    AgentFinished,
    EnvMismatch,
    FarmHealth,
    GameInterrupted,
    GameRecord,
    ProcessReady,
    ServerHealth,
)
from flare.framework.run_events import CheckpointInfo, RunObserver, RunPosition
from flare.framework.run_pause import PauseError, ProcessControl, RunPause, paused
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

    A learner (``flare.learner``) follows the run through ``observers`` (see
    ``RunObserver``), writes its checkpoints through ``checkpointer``, continues a run
    from a ``RunPosition`` (``continue_run``), and controls it from other threads with
    ``request_stop`` and ``request_checkpoint``.
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
        for name, settings in self.settings.items():
            sharing = [
                n for n, ct in self.cts.items() if n != name and ct.lock is self.cts[name].lock
            ]
            if settings.learn_beside_acting and sharing:
                raise ValueError(
                    f"ct_settings[{name!r}]: learn_beside_acting needs a model of its own; "
                    f"it shares parameters with {sharing}"
                )
        self.agents: list[Agent] = []
        self.stats: list[GameRecord] = []
        self.stopped_by_signal: str | None = None
        self.reached_target = False
        self.interrupted_games = 0
        # the simulators the agents saw fail, by address, as the latest report has them
        self.server_health: dict[str, ServerHealth] = {}
        self.observers: list[RunObserver] = []
        # writes a checkpoint of the whole run; by default each CT's model and optimizer
        # to ``model_dir`` (a learner's run directory saves much more)
        self.checkpointer: Callable[[Manager], CheckpointInfo] = Manager._save_models
        # where a continued run takes up: its earlier games, wall time, updates, window
        self.position = RunPosition()
        self.cdps: dict[str, ComputationDataProcessor] = {}
        self.running_agents: set[int] = set()  # ids of the agents still playing
        # exact checkpoints (a learner's): agents log their episodes, and a checkpoint
        # pauses the run (``paused``); a resumed run restores these before it starts
        self.exact_checkpoints = False
        self.agent_snapshots: dict[int, dict[str, Any]] = {}
        self.process_random: dict[int, dict[str, Any]] = {}  # by a process's first agent
        # agents played from outside, by simulators' Act streams (see add_external_agents)
        self.external = ExternalAgents()
        self._games_before: dict[int, int] = {}  # external agents' games at start()
        self._controls: list[ProcessControl] = []
        self._stopping = False
        self._checkpointing = False
        self._reports: mp.Queue | None = None
        self._go: Any = None
        self._supervisor: threading.Thread | None = None  # the thread of start()
        self._failure: str | None = None  # (found while checkpointing)
        self._pauses = 0
        self._metrics: MetricsLogger | None = None
        self.stop_reason: str | None = None
        self._signal_received: int | None = None
        self._start_time: float | None = None
        self._end_time: float | None = None
        self._steps = 0
        self._checkpoint_requests = CheckpointRequests()
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

    def add_external_agents(self, agents: Iterable[Agent], games: int = 0) -> None:
        """Agents that simulators play through Act streams (``flare.learner``), one stream
        each at a time; they need no env. ``games``: the external games the run plays in
        all (0: as many as the run goes on for; the run then ends with its own agents,
        or, with none, when it is stopped or reaches its target)."""
        self.external.games = games
        for agent in agents:
            self.add_agent(agent)
            self.external.add(agent)

    @property
    def own_agents(self) -> list[Agent]:
        """The agents that play in the Manager's processes (not external ones)."""
        external = self.external.ids
        return [agent for agent in self.agents if agent.id not in external]

    def games_before(self, agent: Agent) -> int:
        """The games ``agent`` had played when this session of the run started (``stats``
        holds the rest)."""
        return self._games_before.get(agent.id, agent.games_played)

    # ----- control from other threads -------------------------------------------------------
    def request_stop(self, reason: str = "a stop request") -> None:
        """Stop the run the way SIGTERM does: agents finish their step, the final
        checkpoint is written. Safe from any thread."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def request_checkpoint(self) -> Future[CheckpointInfo]:
        """A checkpoint written by the supervising thread at its next turn (within ~0.1 s
        while the run goes on); the future fails when the run ends first."""
        return self._checkpoint_requests.ask()

    @property
    def policy_version(self) -> int:
        """Learning updates so far over every CT (a resumed run counts on)."""
        return self.position.learn_updates + sum(c.stats.learn_calls for c in self.cdps.values())

    @property
    def games_played(self) -> int:
        """Games finished in the whole run, earlier sessions of a resumed run included."""
        return self.position.games + len(self.stats)

    @property
    def env_steps(self) -> int:
        """Steps of the finished games of the whole run."""
        return self.position.env_steps + self._steps

    def continue_run(self, position: RunPosition) -> None:
        """Take up a run where ``position`` says it was (before ``start()``)."""
        if self._started:
            raise RuntimeError("continue_run() comes before start()")
        self.position = position
        self.interrupted_games = position.interrupted_games

    def checkpoint(self) -> CheckpointInfo:
        """Write a checkpoint now (through ``checkpointer``) and tell the observers. While
        the run goes on, only its supervising thread may: from another thread, use
        ``request_checkpoint``."""
        supervisor = self._supervisor
        if supervisor is not None and threading.current_thread() is not supervisor:
            raise RuntimeError("checkpoint() from another thread: use request_checkpoint()")
        if self._checkpointing:
            raise RuntimeError("a checkpoint is already being written")
        self._checkpointing = True
        try:
            info = self.checkpointer(self)
        finally:
            self._checkpointing = False
        for observer in self.observers:
            observer.checkpoint_saved(info)
        return info

    def _save_models(self) -> CheckpointInfo:
        paths = self.save_model()
        return CheckpointInfo(
            path=paths[0].parent,
            games=self.games_played,
            policy_version=self.policy_version,
            wall_s=self.wall_s,
        )

    @property
    def can_pause(self) -> bool:
        """Whether agents play now (started, not all finished, their CDPs serving):
        before, a checkpoint of the learner alone is exact; after, there is no pause."""
        go = self._go
        alive = any(cdp.is_alive() for cdp in self.cdps.values())
        return go is not None and go.is_set() and alive and bool(self.running_agents)

    @contextmanager
    def paused(self, timeout_s: float = 60.0) -> Iterator[RunPause]:
        """A moment when no CDP serves and every playing agent waits on one (see
        ``flare.framework.run_pause``); for a checkpointer, while the run goes on. A run
        that is stopping stays paused after it: the agents are stopped where they wait."""
        if not self.can_pause:
            raise PauseError("the run is not going on: there is nothing to pause")
        self._pauses += 1
        cdps, serial = list(self.cdps.values()), self._pauses
        controls, quiet = self._controls, self.external.quiet
        with self.external.frozen(), paused(cdps, controls, timeout_s, serial, quiet) as pause:
            pause.local_agents = tuple(self.external.agents)
            yield pause
            if self._stopping:
                for cdp in self.cdps.values():
                    cdp.stop()

    def catch_up(
        self, saved: list[AgentsSaved], playing: frozenset[int], timeout_s: float = 5.0
    ) -> None:
        """While paused: take in the reports of every game the saved agents counted, and
        of every agent that finished before the pause (they may still be on their way),
        so the run's totals match the agents' snapshots. A failure among them fails the
        run (``_supervise`` raises it) as well as this checkpoint."""
        expected = {
            a: g for answer in saved for a, g in zip(answer.agents, answer.games, strict=True)
        }
        deadline = time.monotonic() + timeout_s
        while True:
            counted = Counter(r.agent for r in self.stats)
            behind = {
                a for a, games in expected.items()
                if self.games_before(self.agents[a]) + counted[a] < games
            }  # fmt: skip
            # (agents that finished: their last reports)
            behind |= self.running_agents - playing - self.external.ids
            if not behind:
                return
            if time.monotonic() > deadline or self._reports is None or self._metrics is None:
                raise PauseError(f"the reports of agents {sorted(behind)} did not arrive")
            try:
                report = self._reports.get(timeout=0.05)
            except queue.Empty:
                continue
            failure = self._handle_report(report, self.running_agents, self._metrics)
            if failure:
                self._failure = self._failure or failure
                raise PauseError(failure)

    @property
    def wall_s(self) -> float:
        """Seconds the run has trained, earlier sessions of a continued run included."""
        started, ended = self._start_time, self._end_time
        if started is None:
            return self.position.wall_s
        return self.position.wall_s + (ended or time.time()) - started

    # ----- checkpoints --------------------------------------------------------------------
    def save_model(self, model_dir: str | Path | None = None) -> list[Path]:
        """Save every CT's algorithm (model and optimizer) to ``model_dir/<ct>.pt``."""
        directory = Path(model_dir or self.log_settings.model_dir or ".")
        directory.mkdir(parents=True, exist_ok=True)
        saved = []
        for name, ct in self.cts.items():
            path = directory / f"{name}.pt"
            tmp = path.with_suffix(".pt.tmp")
            checkpoint = {"ct": name, "games": self.games_played, "algorithm": ct.state_dict()}
            torch.save(checkpoint, tmp)
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
        for agent in self.own_agents:
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
        self._go = go
        reports: mp.Queue = ctx.Queue()
        self._reports = reports
        cdps = {
            name: ComputationDataProcessor(
                self.cts[name], s.batch_wait_s, self.torch_threads, s.learn_beside_acting
            )
            for name, s in self.settings.items()
        }
        self.cdps = cdps
        metrics = MetricsLogger(
            self.log_settings.log_dir, self.log_settings.print_interval_s, self.log_settings.window
        )
        metrics.resume(self.position)
        self._metrics = metrics
        self._start_time = metrics.start
        processes: dict[int, mp.process.BaseProcess] = {}
        previous_handlers = self._install_signal_handlers()
        previous_threads = torch.get_num_threads()
        if self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)
        failure: str | None = None
        try:
            size = self.agents_per_process
            own = self.own_agents
            for first in range(0, len(own), size):
                group = own[first : first + size]
                process = self._start_agent_process(group, cdps, ctx, stop_event, go, reports)
                for agent in group:
                    processes[agent.id] = process
            self._prepare_external_agents()
            self.running_agents = set(processes)
            if self.external.keeps_run_going(has_own_agents=bool(processes)):
                self.running_agents |= self.external.ids
            for observer in self.observers:
                observer.run_started(self)
            for cdp in cdps.values():
                if len(self.external):
                    cdp.stay_open()  # (external agents join while it serves)
                cdp.start()
            self.external.start(cdps, stop_event, reports)
            failure = self._supervise(
                processes, reports, cdps, metrics, go, stop_at_mean_return, stop_at_success_rate
            )
            if failure is None and self.exact_checkpoints and self.can_pause:
                self._stopping = True  # the agents stop where the final checkpoint left them
                self._final_checkpoint()
        finally:
            self.external.close()
            stop_event.set()
            failure = self._shutdown(processes, reports, cdps, metrics) or failure
            self.running_agents = set()
            self._restore_signal_handlers(previous_handlers)
            torch.set_num_threads(previous_threads)
            metrics.maybe_print(force=True)
            metrics.close()
            if not self._stopping:
                self._final_checkpoint()
            self._checkpoint_requests.fail_all("the run ended before the checkpoint was written")
            for observer in self.observers:
                observer.run_stopped()
            self._supervisor = None
            self._end_time = time.time()  # (wall_s stops here)
        failure = failure or self._failure
        if self._signal_received is not None:
            self.stopped_by_signal = signal.Signals(self._signal_received).name
            logger.warning("stopped by %s after %d games", self.stopped_by_signal, len(self.stats))
        elif self.stop_reason is not None:
            logger.warning("stopped by %s after %d games", self.stop_reason, len(self.stats))
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
        control, their_control = ctx.Pipe(duplex=True)
        self._controls.append(ProcessControl(control, tuple(ids)))
        for agent in group:
            self._attach_helpers(agent, [CDPChannel(link, agent.id) for link in links])
            agent.checkpointing = self.exact_checkpoints
            snapshot = self.agent_snapshots.get(agent.id)
            if snapshot is not None:
                agent.restore(snapshot)
        random_state = self.process_random.get(ids[0])
        process = ctx.Process(
            target=run_agent_process,
            args=(
                process_payload(group, ctx),
                stop_event,
                reports,
                go,
                their_control,
                random_state,
            ),
            name=f"flare-agents-{ids[0]}" + (f"-{ids[-1]}" if len(ids) > 1 else ""),
            daemon=True,
        )
        process.start()
        for link in links:  # the agents' process owns them now
            link.connection.close()
        their_control.close()
        return process

    def _attach_helpers(self, agent: Agent, channels: list[CDPChannel]) -> None:
        """Give ``agent`` one helper per CT, talking on ``channels`` (in CT order)."""
        agent.helpers = {}
        for (name, settings), channel in zip(self.settings.items(), channels, strict=True):
            helper = settings.agent_helper(name, channel, **settings.helper_kwargs)
            ct = self.cts[name]
            helper.bind(
                ct.keys, seed=agent.id, state_specs=ct.alg.state_specs,
                input_specs=ct.alg.input_specs,
            )  # fmt: skip
            agent.add_agent_helper(helper)

    def _prepare_external_agents(self) -> None:
        """External agents get their helpers (channels attached per stream) and their
        checkpoint's state. Their episodes are never replayed (a stream cannot restart
        one): the one in play at a checkpoint ends there."""
        for agent in self.external.agents:
            self._attach_helpers(agent, [DetachedChannel(agent.id) for _ in self.settings])
            agent.checkpointing = False
            snapshot = self.agent_snapshots.get(agent.id)
            if snapshot is not None:
                agent.restore({**snapshot, "episode": None})
                for helper in agent.helpers.values():
                    helper.interrupt_episode()
            self._games_before[agent.id] = agent.games_played
        self.external.played = sum(self._games_before.values())

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
        running = self.running_agents
        starting = set(processes)
        self._supervisor = threading.current_thread()
        while running:
            if not go.is_set() and not starting & running:
                go.set()
            if self._failure is not None:
                return self._failure
            if self._signal_received is not None or self.stop_reason is not None:
                return None
            self._checkpoint_requests.serve(self.checkpoint)
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
            dead = [aid for aid in running if aid in processes and not processes[aid].is_alive()]
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
            for observer in self.observers:
                observer.tick()
        return None

    def try_checkpoint(self) -> CheckpointInfo | None:
        """A periodic checkpoint: one that cannot pause the run is skipped (the next
        interval tries again)."""
        try:
            return self.checkpoint()
        except PauseError as err:
            logger.warning("checkpoint skipped: %s", err)
        except Exception:  # noqa: BLE001 - (a full disk): the run goes on, the error is logged
            logger.exception("checkpoint failed")
        return None

    def _final_checkpoint(self) -> None:
        """The end of a run writes a checkpoint when there is somewhere to write it."""
        if self.checkpointer is Manager._save_models and not self.log_settings.model_dir:
            return
        try:
            info = self.checkpoint()
        except PauseError as err:  # (the run still ends; its last checkpoint stands)
            logger.error("the final checkpoint failed: %s", err)
            return
        except Exception:  # noqa: BLE001 - never masks the run's own outcome
            logger.exception("the final checkpoint failed")
            return
        logger.info("saved %s", info.path)

    def _update_server_health(self, report: FarmHealth) -> None:
        for server in report.servers:
            known = self.server_health.get(server.address)
            failures = max(server.failures, known.failures if known else 0)
            if known is None or known.state != server.state:
                logger.warning(
                    "simulator %s: %s (agent %d counts %d failures)",
                    server.address,
                    server.state,
                    report.agent,
                    server.failures,
                )
            self.server_health[server.address] = ServerHealth(
                server.address, server.state, failures
            )

    def _handle_report(
        self, report: object, running: set[int], metrics: MetricsLogger
    ) -> str | None:
        if isinstance(report, GameRecord):
            record = dataclasses.replace(report, game=self.games_played, wall_s=self.wall_s)
            self.stats.append(record)
            self._steps += record.length
            metrics.record(record)
            for observer in self.observers:
                observer.game_finished(record)
            if self.external.count_game(record.agent):  # (the external budget is played)
                running.difference_update(self.external.ids)
            interval = self.log_settings.model_save_interval
            if interval and self.games_played % interval == 0 and not self._checkpointing:
                self.try_checkpoint()
        elif isinstance(report, GameInterrupted):
            self.interrupted_games += 1
            logger.warning("agent %d: episode interrupted: %s", report.agent, report.reason)
            for observer in self.observers:
                observer.game_interrupted(report)
        elif isinstance(report, FarmHealth):
            self._update_server_health(report)
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
        if self._stopping:  # (held after the final checkpoint: closing them stops the agents)
            for cdp in cdps.values():
                cdp.stop()
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
            self.request_stop(signal.Signals(signum).name)

        return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
