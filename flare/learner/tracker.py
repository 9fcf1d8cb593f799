"""The learner's view of its run, for whoever asks from another thread.

``RunTracker`` follows a Manager as one of its observers (in the Manager's thread) and
answers the Learner service's threads from a snapshot under a lock: the status, a
stream of progress events, a checkpoint on demand, a stop.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from flare.framework.reports import GameRecord, ServerHealth
from flare.framework.run_events import CheckpointInfo, RunObserver
from flare.learner.status import ProgressEvent, ProgressKind, RunState, RunStatus

if TYPE_CHECKING:
    from flare.framework.manager import Manager

_NEVER_FAILED = ServerHealth("", "live", 0)
SUBSCRIBER_QUEUE = 64  # events a slow watcher may fall behind by; older ones are dropped


class Subscription:
    """One watcher's events, in order; ``None`` once the run has finished."""

    def __init__(self) -> None:
        self._events: queue.Queue[ProgressEvent | None] = queue.Queue(SUBSCRIBER_QUEUE)

    def put(self, event: ProgressEvent | None) -> None:
        while True:
            try:
                self._events.put_nowait(event)
                return
            except queue.Full:  # a watcher that does not read loses its oldest event
                try:
                    self._events.get_nowait()
                except queue.Empty:
                    pass

    def next(self, timeout_s: float) -> ProgressEvent | None:
        """The next event; raises ``TimeoutError`` if none comes within ``timeout_s``."""
        try:
            return self._events.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError from None

    def events(self, poll_s: float = 0.5) -> Iterator[ProgressEvent]:
        """Every event until the run finishes (the FINISHED event included)."""
        while True:
            try:
                event = self.next(poll_s)
            except TimeoutError:
                continue
            if event is None:
                return
            yield event


class RunTracker(RunObserver):
    """Counts a run's games for the Learner service and the progress display.

    Args:
        manager: the run's Manager (the tracker adds itself to its observers).
        run_name: the name the status shows.
        progress_interval_s: seconds between progress events.
        simulators: the simulator addresses the run uses (shown in the status).
    """

    def __init__(
        self,
        manager: Manager,
        run_name: str,
        progress_interval_s: float = 10.0,
        simulators: Sequence[str] = (),
    ) -> None:
        if progress_interval_s <= 0:
            raise ValueError(f"progress_interval_s must be > 0, got {progress_interval_s}")
        self.run_name = run_name
        self.progress_interval_s = progress_interval_s
        self.simulators = tuple(simulators)
        self._lock = threading.Lock()
        self._manager = manager
        manager.observers.append(self)
        self._state = RunState.STARTING
        self._created = time.monotonic()
        self._returns: deque[float] = deque(maxlen=100)
        self._successes: deque[bool] = deque(maxlen=100)
        self._ct_costs: dict[str, dict[str, float]] = {}
        self._games = 0
        self._env_steps = 0
        self._budget = 0
        self._last_progress = time.monotonic()
        # (time, env steps) about twice a second over the last progress interval: the
        # env steps/s the status shows
        self._samples: deque[tuple[float, int]] = deque()
        self._last_checkpoint: CheckpointInfo | None = None
        self._subscribers: list[Subscription] = []

    # ----- the Manager's side ----------------------------------------------------------------
    def run_started(self, manager: Manager) -> None:
        position = manager.position
        window = manager.log_settings.window
        with self._lock:
            self._state = RunState.RUNNING
            self._returns = deque(position.recent_returns, maxlen=window)
            self._successes = deque(position.recent_successes, maxlen=window)
            self._games = position.games
            self._env_steps = position.env_steps
            self._samples = deque([(time.monotonic(), position.env_steps)])
            external = manager.external
            self._budget = position.games + sum(
                a.num_games - a.games_played for a in manager.own_agents
            )
            if external.games:
                self._budget += max(0, external.games - external.played)
            self._last_progress = time.monotonic()

    def game_finished(self, record: GameRecord) -> None:
        with self._lock:
            self._games += 1
            self._env_steps += record.length
            self._returns.append(record.return_)
            self._successes.append(record.success)
            for key, value in record.costs.items():
                ct, _, cost = key.partition("/")
                self._ct_costs.setdefault(ct, {})[cost] = value

    def checkpoint_saved(self, info: CheckpointInfo) -> None:
        with self._lock:
            self._last_checkpoint = info
        self._publish(ProgressKind.CHECKPOINT, info)

    def tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            if not self._samples or now - self._samples[-1][0] >= 0.5:
                self._samples.append((now, self._env_steps))
                window = self.progress_interval_s
                while len(self._samples) > 2 and now - self._samples[1][0] >= window:
                    self._samples.popleft()
        if now - self._last_progress < self.progress_interval_s:
            return
        with self._lock:
            self._last_progress = now
            if self._manager.stop_reason is not None:
                self._state = RunState.STOPPING
        self._publish(ProgressKind.PROGRESS)

    def run_stopped(self) -> None:
        with self._lock:
            self._state = RunState.FINISHED
        self._publish(ProgressKind.FINISHED)
        with self._lock:
            subscribers, self._subscribers = self._subscribers, []
        for subscription in subscribers:
            subscription.put(None)

    # ----- the service's side ----------------------------------------------------------------
    def status(self) -> RunStatus:
        with self._lock:
            manager = self._manager
            state = self._state
            if state is RunState.RUNNING and manager.stop_reason:
                state = RunState.STOPPING
            n = len(self._returns)
            return RunStatus(
                run_name=self.run_name,
                state=state,
                games=self._games,
                games_budget=self._budget,
                env_steps=self._env_steps,
                window=self._returns.maxlen or 0,
                mean_return=sum(self._returns) / n if n else math.nan,
                success_rate=sum(self._successes) / n if n else math.nan,
                env_steps_per_s=self._rate(),
                policy_version=manager.policy_version,
                agents_alive=len(manager.running_agents - manager.external.ids)
                + manager.external.streams,
                agents_total=len(manager.agents),
                act_streams=manager.external.streams,
                act_streams_max=len(manager.external),
                interrupted_games=manager.interrupted_games,
                uptime_s=time.monotonic() - self._created,
                wall_s=manager.wall_s,
                ct_costs={ct: dict(costs) for ct, costs in self._ct_costs.items()},
                simulators=self.simulators,
                simulator_health=tuple(
                    health
                    for address, health in sorted(manager.server_health.items())
                    if address in self.simulators
                ),
                simulators_live=sum(
                    manager.server_health.get(a, _NEVER_FAILED).state != "dropped"
                    for a in self.simulators
                ),
                last_checkpoint=self._last_checkpoint,
                stop_reason=manager.stop_reason or "",
            )

    def _rate(self) -> float:
        """Env steps/s over about the latest progress interval (under the lock)."""
        if len(self._samples) < 2:
            return 0.0
        (since, first), (until, last) = self._samples[0], self._samples[-1]
        return (last - first) / max(until - since, 1e-9)

    def subscribe(self) -> Subscription:
        """Progress events from now on (a finished run's stream ends at once)."""
        subscription = Subscription()
        with self._lock:
            finished = self._state is RunState.FINISHED
            if not finished:
                self._subscribers.append(subscription)
        if finished:
            subscription.put(None)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    def save_checkpoint(self, timeout_s: float = 60.0) -> CheckpointInfo:
        """Ask the Manager for a checkpoint and wait for it to be written."""
        with self._lock:
            state = self._state
        if state is not RunState.RUNNING:
            raise RuntimeError(f"the run is {state.value}: no checkpoint can be taken now")
        return self._manager.request_checkpoint().result(timeout_s)

    def stop(self, reason: str) -> None:
        """Stop the run as SIGTERM would (the final checkpoint is written); before the run
        starts, it stops as soon as it does."""
        self._manager.request_stop(reason)

    def _publish(self, kind: ProgressKind, checkpoint: CheckpointInfo | None = None) -> None:
        event = ProgressEvent(kind, self.status(), checkpoint)
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription.put(event)
