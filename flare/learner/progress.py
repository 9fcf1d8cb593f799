"""The progress of a run on a terminal: a live bar (rich), or plain lines in a log.

``auto`` chooses the bar when standard output is a terminal and plain progress lines
(the Manager's, every ``print_interval_s``) otherwise, so CI logs and ``nohup`` files
stay readable.
"""

from __future__ import annotations

import math
import os
import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from flare.framework.manager import Manager
from flare.framework.run_events import RunObserver
from flare.learner.tracker import RunTracker

REFRESH_S = 0.5


def wants_live_display(mode: str) -> bool:
    """Whether ``mode`` (auto, rich, plain, off) means the live bar here."""
    if mode == "auto":
        return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
    return mode == "rich"


class LiveProgress(RunObserver):
    """A bar of games against the budget, with mean return, env steps/s and time left.
    Reads the tracker, so it must come after it among the Manager's observers."""

    def __init__(self, tracker: RunTracker, console: Console | None = None) -> None:
        self.tracker = tracker
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last = 0.0
        self._rate_from = (time.monotonic(), 0)

    def run_started(self, manager: Manager) -> None:
        status = self.tracker.status()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("games | mean return {task.fields[mean]} | {task.fields[rate]} steps/s"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
            refresh_per_second=2,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            status.run_name,
            total=max(status.games_budget, 1),
            completed=status.games,
            mean="-",
            rate="-",
        )
        self._rate_from = (time.monotonic(), status.env_steps)

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last >= REFRESH_S:
            self._last = now
            self._update(now)

    def _update(self, now: float) -> None:
        if self._progress is None or self._task is None:
            return
        status = self.tracker.status()
        since, steps = self._rate_from
        rate = (status.env_steps - steps) / max(now - since, 1e-9)
        if now - since >= 5.0:  # a rate over the last few seconds, not since the start
            self._rate_from = (now, status.env_steps)
        mean = "-" if math.isnan(status.mean_return) else f"{status.mean_return:.2f}"
        self._progress.update(self._task, completed=status.games, mean=mean, rate=f"{rate:.0f}")

    def run_stopped(self) -> None:
        if self._progress is not None:
            self._update(time.monotonic())
            self._progress.stop()
            self._progress = None
