"""TensorBoard event files of a run, under the tags CleanRL and SB3 users know.

Per game, against the run's env steps: ``charts/episodic_return``,
``charts/episodic_length`` and each CT's costs as ``losses/<ct>/<cost>``. Per progress
interval: ``rollout/ep_rew_mean``, ``rollout/ep_len_mean``, ``rollout/success_rate`` (over
the stop window), ``time/fps`` and ``charts/SPS`` (env steps per second) and
``charts/policy_version``. The config is the text ``config``. A resumed run purges what
a killed session wrote after its checkpoint, so curves never double back.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from flare.framework.manager import Manager
from flare.framework.reports import GameRecord
from flare.framework.run_events import RunObserver


class TensorBoardLog(RunObserver):
    def __init__(
        self,
        log_dir: Path,
        config_text: str | None = None,
        interval_s: float = 10.0,
    ) -> None:
        self.log_dir = log_dir
        self.config_text = config_text
        self.interval_s = interval_s
        self._writer: SummaryWriter | None = None
        self._manager: Manager | None = None
        self._steps = 0
        self._returns: deque[float] = deque(maxlen=100)
        self._lengths: deque[int] = deque(maxlen=100)
        self._successes: deque[bool] = deque(maxlen=100)
        self._last = time.monotonic()
        self._steps_at_last = 0

    def run_started(self, manager: Manager) -> None:
        position = manager.position
        self._manager = manager
        self._steps = self._steps_at_last = position.env_steps
        window = manager.log_settings.window
        self._returns = deque(position.recent_returns, maxlen=window)
        self._successes = deque(position.recent_successes, maxlen=window)
        self._lengths = deque(maxlen=window)
        # purge_step: events a killed session logged past the checkpoint are dropped
        self._writer = SummaryWriter(
            str(self.log_dir), purge_step=position.env_steps if position.games else None
        )
        if self.config_text is not None and not position.games:
            self._writer.add_text("config", f"```toml\n{self.config_text}\n```", 0)
        self._last = time.monotonic()

    def game_finished(self, record: GameRecord) -> None:
        writer = self._writer
        if writer is None:
            return
        self._steps += record.length
        self._returns.append(record.return_)
        self._lengths.append(record.length)
        self._successes.append(record.success)
        writer.add_scalar("charts/episodic_return", record.return_, self._steps)
        writer.add_scalar("charts/episodic_length", record.length, self._steps)
        for key, value in record.costs.items():
            writer.add_scalar(f"losses/{key}", value, self._steps)

    def tick(self) -> None:
        now = time.monotonic()
        if self._writer is None or now - self._last < self.interval_s:
            return
        self.write_summary(now)

    def write_summary(self, now: float | None = None) -> None:
        writer, manager = self._writer, self._manager
        if writer is None or manager is None:
            return
        now = time.monotonic() if now is None else now
        fps = (self._steps - self._steps_at_last) / max(now - self._last, 1e-9)
        self._last, self._steps_at_last = now, self._steps
        step = self._steps
        if self._returns:
            writer.add_scalar("rollout/ep_rew_mean", _mean(self._returns), step)
            writer.add_scalar("rollout/success_rate", _mean(self._successes), step)
        if self._lengths:
            writer.add_scalar("rollout/ep_len_mean", _mean(self._lengths), step)
        writer.add_scalar("time/fps", fps, step)
        writer.add_scalar("charts/SPS", fps, step)
        writer.add_scalar("charts/policy_version", manager.policy_version, step)
        writer.flush()

    def run_stopped(self) -> None:
        if self._writer is not None:
            self.write_summary()
            self._writer.close()
            self._writer = None


def _mean(values: deque[float] | deque[int] | deque[bool]) -> float:
    return float(sum(values)) / len(values)
