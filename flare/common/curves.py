"""Reward curves from ``games.csv``: reading, smoothing, plotting."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class GameLog:
    """The columns of ``games.csv`` that curves need, in game order."""

    game: np.ndarray
    returns: np.ndarray
    wall_s: np.ndarray
    success: np.ndarray  # 1.0 for a game that ended in success, else 0.0

    def __len__(self) -> int:
        return len(self.game)


def resolve_csv(path: str | Path) -> Path:
    """Accept a log directory or the CSV file itself."""
    path = Path(path)
    return path / "games.csv" if path.is_dir() else path


def read_games(path: str | Path) -> GameLog:
    csv_path = resolve_csv(path)
    if not csv_path.exists():
        raise FileNotFoundError(f"{csv_path} does not exist (was log_settings['log_dir'] set?)")
    with csv_path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("game") not in (None, "", "game")]
    rows.sort(key=lambda r: int(r["game"]))
    return GameLog(
        game=np.array([int(r["game"]) for r in rows], dtype=np.int64),
        returns=np.array([float(r["return"]) for r in rows], dtype=np.float64),
        wall_s=np.array([float(r["wall_s"]) for r in rows], dtype=np.float64),
        success=np.array([float(r.get("success") or 0) for r in rows], dtype=np.float64),
    )


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each point (fewer at the start)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    sums = np.cumsum(np.insert(values.astype(np.float64), 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - window)
    return (sums[idx] - sums[lo]) / (idx - lo)


def first_reaching(log: GameLog, threshold: float, window: int = 100) -> int | None:
    """Index of the first game after which the mean of the last ``window`` games >= threshold.

    Only full windows count, so a lucky first game never "solves" a task.
    """
    if len(log) < window:
        return None
    means = moving_average(log.returns, window)
    hits = np.nonzero(means[window - 1 :] >= threshold)[0]
    return int(hits[0] + window - 1) if len(hits) else None


def plot_reward_curve(
    path: str | Path,
    out: str | Path,
    window: int = 100,
    threshold: float | None = None,
    success: bool = False,
) -> Path:
    """Draw returns and their moving average against games (and, with ``success``, the
    success rate over the last ``window`` games below them); returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = read_games(path)
    rows = 2 if success else 1
    fig, axes = plt.subplots(rows, 1, figsize=(8, 4.5 * rows), sharex=True, squeeze=False)
    ax = axes[0, 0]
    ax.plot(log.game, log.returns, color="tab:blue", alpha=0.25, linewidth=0.6, label="return")
    ax.plot(
        log.game,
        moving_average(log.returns, window),
        color="tab:blue",
        label=f"mean of last {window}",
    )
    if threshold is not None:
        ax.axhline(threshold, color="tab:red", linestyle="--", linewidth=1, label=f"{threshold:g}")
    ax.set_ylabel("return")
    ax.set_title(f"{resolve_csv(path).parent.name or 'reward curve'}: {len(log)} games")
    ax.legend(loc="lower right")
    if success:
        rate = axes[1, 0]
        rate.plot(log.game, 100 * moving_average(log.success, window), color="tab:green")
        rate.set_ylabel(f"success over last {window} games (%)")
        rate.set_ylim(0, 100)
    for a in axes[:, 0]:
        a.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("games")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
