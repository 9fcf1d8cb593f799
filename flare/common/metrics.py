"""The metrics logger: a progress line on the console and ``games.csv`` on disk."""

from __future__ import annotations

import csv
import math
import sys
import time
from collections import deque
from pathlib import Path
from typing import TextIO

from flare.framework.reports import GameRecord
from flare.framework.run_events import RunPosition

CSV_COLUMNS = ("game", "agent", "return", "length", "wall_s", "success", "cost")


class MetricsLogger:
    """Keeps running statistics of finished games and reports them.

    Args:
        log_dir: if set, every game is appended to ``log_dir/games.csv``.
        print_interval_s: seconds between progress lines (0 disables them).
        window: the number of recent games averaged in the progress line.
        stream: where progress lines go (standard output by default).
    """

    def __init__(
        self,
        log_dir: str | Path | None = None,
        print_interval_s: float = 10.0,
        window: int = 100,
        stream: TextIO | None = None,
    ) -> None:
        self.print_interval_s = print_interval_s
        self.stream = stream if stream is not None else sys.stdout
        self.returns: deque[float] = deque(maxlen=window)
        self.successes: deque[bool] = deque(maxlen=window)
        self.costs: deque[float] = deque(maxlen=window)
        self.games = 0
        self.steps = 0
        self.start = time.time()
        self._last_print = time.monotonic()
        self._steps_at_last_print = 0
        self._csv_file = None
        self._csv = None
        if log_dir is not None:
            path = Path(log_dir)
            path.mkdir(parents=True, exist_ok=True)
            csv_path = path / "games.csv"
            is_new = not csv_path.exists() or csv_path.stat().st_size == 0
            self._csv_file = csv_path.open("a", newline="")
            self._csv = csv.writer(self._csv_file)
            if is_new:
                self._csv.writerow(CSV_COLUMNS)
                self._csv_file.flush()

    def resume(self, position: RunPosition) -> None:
        """Go on from a continued run's totals and stop window."""
        self.games = position.games
        self.steps = position.env_steps
        self._steps_at_last_print = self.steps
        self.returns.extend(position.recent_returns)
        self.successes.extend(position.recent_successes)
        self.costs.extend(position.recent_costs)

    @property
    def mean_return(self) -> float:
        return sum(self.returns) / len(self.returns) if self.returns else math.nan

    @property
    def success_rate(self) -> float:
        return sum(self.successes) / len(self.successes) if self.successes else math.nan

    def record(self, game: GameRecord) -> None:
        self.games += 1
        self.steps += game.length
        self.returns.append(game.return_)
        self.successes.append(game.success)
        if game.cost is not None:
            self.costs.append(game.cost)
        if self._csv is not None:
            cost = "" if game.cost is None else f"{game.cost:.6g}"
            self._csv.writerow(
                (
                    game.game,
                    game.agent,
                    f"{game.return_:.6g}",
                    game.length,
                    f"{game.wall_s:.3f}",
                    int(game.success),
                    cost,
                )
            )
            assert self._csv_file is not None  # (opened together with the writer)
            self._csv_file.flush()

    def maybe_print(self, force: bool = False) -> None:
        if self.print_interval_s <= 0:  # progress lines are off, the final one too
            return
        now = time.monotonic()
        elapsed = now - self._last_print
        if not force and elapsed < self.print_interval_s:
            return
        steps_per_s = (self.steps - self._steps_at_last_print) / max(elapsed, 1e-9)
        cost = f"{sum(self.costs) / len(self.costs):.4g}" if self.costs else "-"
        self.stream.write(
            f"[flare] {time.time() - self.start:7.1f}s | games {self.games} | "
            f"mean return (last {self.returns.maxlen}) {self.mean_return:.2f} | "
            f"{steps_per_s:.0f} env steps/s | cost {cost}\n"
        )
        self.stream.flush()
        self._last_print = now
        self._steps_at_last_print = self.steps

    def close(self) -> None:
        if self._csv_file is not None:
            self._csv_file.close()
            self._csv_file = None
            self._csv = None
