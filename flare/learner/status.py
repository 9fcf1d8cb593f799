"""What a learner says about its run: the status the Learner service and the CLI show."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from flare.framework.reports import ServerHealth
from flare.framework.run_events import CheckpointInfo


class RunState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"


@dataclass(frozen=True)
class RunStatus:
    """One look at a run. Means are over the last ``window`` games (NaN before any game);
    ``env_steps_per_s`` over the latest progress interval; ``ct_costs`` holds each CT's
    costs of the latest game that learned (``{ct: {cost: value}}``)."""

    run_name: str
    state: RunState
    games: int
    games_budget: int
    env_steps: int
    window: int
    mean_return: float
    success_rate: float
    env_steps_per_s: float
    policy_version: int
    agents_alive: int
    agents_total: int
    interrupted_games: int
    uptime_s: float
    wall_s: float
    ct_costs: dict[str, dict[str, float]] = field(default_factory=dict)
    simulators: tuple[str, ...] = ()
    last_checkpoint: CheckpointInfo | None = None
    stop_reason: str = ""
    act_streams: int = 0
    act_streams_max: int = 0
    simulator_health: tuple[ServerHealth, ...] = ()  # (those that ever failed)
    simulators_live: int = 0

    @property
    def games_left(self) -> int:
        return max(0, self.games_budget - self.games)

    def line(self) -> str:
        """One line for a terminal or a log."""
        mean = "-" if math.isnan(self.mean_return) else f"{self.mean_return:.2f}"
        success = f" | success {self.success_rate:.0%}" if self.success_rate > 0 else ""
        return (
            f"{self.run_name}: {self.state.value} | games {self.games}/{self.games_budget} | "
            f"mean return (last {self.window}) {mean}{success} | "
            f"{self.env_steps_per_s:.0f} env steps/s | policy v{self.policy_version} | "
            f"agents {self.agents_alive}/{self.agents_total} | "
            + (f"Act streams {self.act_streams}/{self.act_streams_max} | "
               if self.act_streams_max else "")
            + (f"simulators {self.simulators_live}/{len(self.simulators)} live | "
               if len(self.simulators) > 1 or self.simulator_health else "")
            + f"{self.wall_s:.0f} s"
        )  # fmt: skip


class ProgressKind(StrEnum):
    PROGRESS = "progress"
    CHECKPOINT = "checkpoint"
    FINISHED = "finished"


@dataclass(frozen=True)
class ProgressEvent:
    """One message of the progress stream: the status, and why it was sent."""

    kind: ProgressKind
    status: RunStatus
    checkpoint: CheckpointInfo | None = None
