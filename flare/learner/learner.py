"""A learner: a Manager's run with its run directory, checkpoints and Learner service.

``flare train RUN.toml`` builds one from a config; a script builds its Manager by hand
and gets the same thing:

    manager = Manager(ct_settings, log_settings)
    manager.add_agents(agents)
    Learner(manager, RunDirectory.create("runs/mine", None, sys.argv)).run()
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from flare.framework.env_spec import EnvSpec
from flare.framework.manager import Manager
from flare.framework.run_events import CheckpointInfo, RunObserver
from flare.learner.checkpoint import SUMMARY, RunCheckpointer, resume_from
from flare.learner.progress import LiveProgress, wants_live_display
from flare.learner.run_dir import RunDirectory
from flare.learner.tensorboard_log import TensorBoardLog
from flare.learner.tracker import RunTracker

if TYPE_CHECKING:
    from flare.bridge.security import TLSFiles
    from flare.learner.service import LearnerServer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearnerSettings:
    """How a learner keeps and shows its run.

    Attributes:
        run_name: the name its status shows (default: the run directory's name).
        address: where the Learner service listens (port 0: any free one); None: no
            service.
        progress_interval_s: seconds between progress events (the service's stream,
            TensorBoard's summaries).
        checkpoint_every_games: also checkpoint every this many games (0: not by games).
        checkpoint_every_s: also checkpoint every this many seconds (0: not by time).
        keep_checkpoints: how many of the newest checkpoints stay on disk.
        save_buffers: checkpoints hold the agents' replay buffers (a resumed run then
            plays on exactly; without, it refills them).
        pause_timeout_s: how long a checkpoint waits for every agent to pause.
        tensorboard: write TensorBoard event files.
        progress: ``auto`` (a live bar on a terminal, plain lines otherwise), ``rich``,
            ``plain`` or ``off``.
        tls, token, insecure: the Learner service's TLS files and bearer token, as
            ``flare serve`` takes them (loopback needs neither).
        simulators: the simulator addresses the run uses, for its status.
        act_open_wait_s: how long an Act stream opened before the run starts waits for it.
    """

    run_name: str | None = None
    address: str | None = "127.0.0.1:0"
    progress_interval_s: float = 10.0
    checkpoint_every_games: int = 0
    checkpoint_every_s: float = 600.0
    keep_checkpoints: int = 3
    save_buffers: bool = True
    pause_timeout_s: float = 60.0
    tensorboard: bool = True
    progress: str = "auto"
    tls: TLSFiles | None = None
    token: str | None = None
    insecure: bool = False
    simulators: tuple[str, ...] = ()
    act_open_wait_s: float = 10.0


class TimedCheckpoints(RunObserver):
    """A checkpoint whenever ``every_s`` seconds have passed since the last one."""

    def __init__(self, manager: Manager, every_s: float) -> None:
        self.manager = manager
        self.every_s = every_s
        self._last = time.monotonic()

    def checkpoint_saved(self, info: CheckpointInfo) -> None:
        self._last = time.monotonic()

    def tick(self) -> None:
        if self.every_s and time.monotonic() - self._last >= self.every_s:
            if self.manager.try_checkpoint() is None:
                self._last = time.monotonic()  # (skipped: try again an interval later)


class CheckpointLines(RunObserver):
    """A line per checkpoint: where, how far, and how big the agents' part (the replay
    buffers, mostly) is."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def checkpoint_saved(self, info: CheckpointInfo) -> None:
        try:
            summary = json.loads((info.path / SUMMARY).read_text())
            size = f", agents {summary['agents_bytes'] / 1e6:.1f} MB"
        except (OSError, ValueError, KeyError):
            size = ""
        print(
            f"flare: checkpoint {info.path.name}: {info.games} games, policy "
            f"v{info.policy_version}{size}",
            file=self.out,
            flush=True,
        )


class Learner:
    """Runs ``manager`` in ``run_dir``; with ``resume``, from its latest checkpoint.

    A Manager with external agents (``add_external_agents``) needs ``env_spec``, the spec
    its models were built for: an Act stream's spec is checked against it.
    """

    def __init__(
        self,
        manager: Manager,
        run_dir: RunDirectory,
        settings: LearnerSettings | None = None,
        config_text: str | None = None,
        resume: bool = False,
        out: TextIO | None = None,
        env_spec: EnvSpec | None = None,
    ) -> None:
        if len(manager.external) and env_spec is None:
            raise ValueError("a run with external agents needs the env_spec its models read")
        self.env_spec = env_spec
        self.manager = manager
        self.run_dir = run_dir
        self.settings = settings or LearnerSettings()
        self.config_text = config_text
        self.resume = resume
        self.out = out if out is not None else sys.stdout
        self.name = self.settings.run_name or run_dir.path.name
        self.tracker = RunTracker(
            manager, self.name, self.settings.progress_interval_s, self.settings.simulators
        )
        self.address: str | None = None
        self.resumed_from: CheckpointInfo | None = None

    def run(
        self,
        stop_at_mean_return: float | None = None,
        stop_at_success_rate: float | None = None,
        command: list[str] | None = None,
    ) -> Manager:
        manager, settings, run_dir = self.manager, self.settings, self.run_dir
        if self.resume:
            self._take_up(command or sys.argv)
        manager.log_settings.log_dir = str(run_dir.path)
        manager.log_settings.model_save_interval = settings.checkpoint_every_games
        manager.checkpointer = RunCheckpointer(
            run_dir, settings.keep_checkpoints, settings.save_buffers, settings.pause_timeout_s
        )
        manager.exact_checkpoints = True
        if settings.tensorboard:
            manager.observers.append(
                TensorBoardLog(
                    run_dir.tensorboard_dir, self.config_text, settings.progress_interval_s
                )
            )
        if settings.checkpoint_every_s:
            manager.observers.append(TimedCheckpoints(manager, settings.checkpoint_every_s))
        if settings.progress != "off":
            manager.observers.append(CheckpointLines(self.out))
        if settings.progress == "off":
            manager.log_settings.print_interval_s = 0
        elif wants_live_display(settings.progress):
            manager.log_settings.print_interval_s = 0
            manager.observers.append(LiveProgress(self.tracker))
        server = self._serve()
        try:
            manager.start(stop_at_mean_return, stop_at_success_rate)
        finally:
            if server is not None:
                server.stop(1.0)
                run_dir.clear_learner_address()
        return manager

    def _take_up(self, command: list[str]) -> None:
        checkpoint = self.run_dir.latest_checkpoint()
        games = 0
        if checkpoint is not None:
            position = resume_from(self.manager, checkpoint)
            games = position.games
            self.resumed_from = CheckpointInfo(
                checkpoint, position.games, position.learn_updates, position.wall_s
            )
        dropped = self.run_dir.keep_games(games)
        self.run_dir.add_session(command, checkpoint)
        where = f"checkpoint {checkpoint.name}" if checkpoint else "the start (no checkpoint)"
        print(
            f"flare: resuming {self.name} from {where}: {games} games"
            + (f" ({dropped} games logged after it are played again)" if dropped else ""),
            file=self.out,
            flush=True,
        )

    def _serve(self) -> LearnerServer | None:
        settings = self.settings
        if settings.address is None:
            return None
        from flare.learner.act_service import ActHandler
        from flare.learner.service import serve_learner

        act = None
        if len(self.manager.external) and self.env_spec is not None:
            manager = self.manager
            act = ActHandler(
                manager.external,
                self.env_spec,
                self.name,
                lambda: manager.policy_version,
                settings.act_open_wait_s,
            )
        server = serve_learner(
            self.tracker,
            settings.address,
            tls=settings.tls,
            token=settings.token,
            insecure=settings.insecure,
            act=act,
        )
        self.address = server.address
        self.run_dir.write_learner_address(server.address)
        print(
            f"flare learner {self.name} listening on {server.address} "
            f"(run directory {self.run_dir.path})",
            file=self.out,
            flush=True,
        )
        return server
