"""What a running Manager tells the parts of a learner that watch it.

A run directory's writers, the Learner service's status and the progress display all
follow one run without the Manager knowing them: each is a ``RunObserver`` the Manager
calls from its supervising thread (the one that called ``start()``), so an observer
never races the Manager's own bookkeeping. An observer that is slow slows the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flare.framework.reports import GameInterrupted, GameRecord

if TYPE_CHECKING:
    from flare.framework.manager import Manager


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint that was written: where, and the run's position when it was."""

    path: Path
    games: int
    policy_version: int
    wall_s: float


@dataclass(frozen=True)
class RunPosition:
    """Where a continued run takes up: the totals of its earlier sessions and the games of
    its stop window (oldest first), so means and targets go on as if it never stopped."""

    games: int = 0
    env_steps: int = 0
    wall_s: float = 0.0
    learn_updates: int = 0
    interrupted_games: int = 0
    recent_returns: tuple[float, ...] = ()
    recent_successes: tuple[bool, ...] = ()
    recent_costs: tuple[float, ...] = ()


class RunObserver:
    """Hooks called by the Manager; each does nothing unless overridden."""

    def run_started(self, manager: Manager) -> None:
        """The agents are starting (``manager.cdps`` and the counters are set)."""

    def game_finished(self, record: GameRecord) -> None:
        """A game ended (``record.game`` and ``record.wall_s`` already filled in)."""

    def game_interrupted(self, report: GameInterrupted) -> None:
        """A game was cut short by its environment (not a game over)."""

    def checkpoint_saved(self, info: CheckpointInfo) -> None:
        """A checkpoint was written."""

    def tick(self) -> None:
        """Called about ten times a second while the run goes on."""

    def run_stopped(self) -> None:
        """Every agent has stopped (the final checkpoint, if any, comes before)."""
