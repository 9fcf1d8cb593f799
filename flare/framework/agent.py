"""Agent: the episode loop, run in a process of its own.

An agent builds its environment inside its own process (``set_env``), asks its
ComputationTasks for actions through AgentHelpers, and stores experiences with them.
It never touches tensors.
"""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any, Protocol

import numpy as np

from flare.framework.agent_helper import (
    AgentHelper,
    CDPChannel,
    CDPClosed,
    ExpReplayHelper,
    OnlineHelper,
    ReplayBuffer,
    batch_of_one,
    unbatch_one,
)
from flare.framework.env import ActionDict, Env, EnvInterrupted, ObservationDict, RewardDict
from flare.framework.episode_replay import (
    LIVE,
    PREDICT,
    STORE,
    Call,
    EpisodeLog,
    EpisodeReplay,
    InFlight,
    ReplayDiverged,
    SavedEpisode,
    checksum,
)
from flare.framework.outcomes import GameOutcome, NextStep, next_step_after
from flare.framework.pipe_messages import LearnRequest
from flare.framework.reports import (
    AgentFailed,
    AgentFinished,
    EnvMismatch,
    FarmHealth,
    GameInterrupted,
    GameRecord,
    ServerHealth,
)

__all__ = [
    "Agent",
    "AgentHelper",
    "CDPChannel",
    "ExpReplayHelper",
    "OnlineHelper",
    "ReplayBuffer",
]

StateDict = dict[str, np.ndarray]
MAX_INTERRUPTIONS_IN_A_ROW = 10
_CONTINUES = NextStep.CONTINUES  # (read every step; an enum lookup costs ~170 ns)


class StopRequested(Exception):
    """The Manager asked every agent to stop."""


class SessionEnded(EnvInterrupted):
    """An agent's session with its env is over (an Act stream ended or broke); with
    ``mid_episode``, the episode in play was cut short."""

    def __init__(self, message: str, mid_episode: bool) -> None:
        super().__init__(message)
        self.mid_episode = mid_episode


class StopFlag(Protocol):
    """What tells an agent to stop (an Event, or a run's budget of games)."""

    def is_set(self) -> bool: ...


class Reports(Protocol):
    """Where an agent reports its games (the Manager's queue)."""

    def put(self, report: object) -> None: ...


class EnvMismatchError(Exception):
    """The env does not give an observation (or shape) that a CT's model reads."""


class Agent(ABC):
    """The control flow of one embodied agent: reset, predict, step, store, repeat.

    Subclasses write ``_cts_predict`` and ``_cts_store_data``; the rest is provided.

    Args:
        num_games: games to play before the agent stops (in all: a continued run counts
            the games it already played, see ``continue_after``).
        actrep: how many times the env repeats each action.
        learning: store experiences and learn (False only acts).
    """

    def __init__(self, num_games: int, actrep: int = 1, learning: bool = True) -> None:
        if num_games < 1:
            raise ValueError(f"num_games must be >= 1, got {num_games}")
        if actrep < 1:
            raise ValueError(f"actrep must be >= 1, got {actrep}")
        self.id = -1  # assigned by Manager.add_agent
        self.num_games = num_games
        self.actrep = actrep
        self.learning = learning
        self.helpers: dict[str, AgentHelper] = {}
        self.env: Env | None = None
        self.alive = NextStep.CONTINUES  # the status of the step the agent is at
        self._env_factory: Callable[[], Env] | None = None
        self._stop_event: StopFlag | None = None
        self._game_return = 0.0
        self._game_length = 0
        self._game_costs: dict[str, list[float]] = {}  # "<ct>/<cost>" -> per learn
        self._games_played = 0
        self._servers_seen: dict[str, ServerHealth] = {}  # (its env's farm, as last reported)
        # exact checkpoints (set by a learner): log each episode's calls so that a
        # resumed run can take the episode up where it was (flare.framework.episode_replay)
        self.checkpointing = False
        self._log: EpisodeLog | None = None
        self._current: tuple[str, str] | None = None  # (kind, CT) of the call under way
        self._replay: EpisodeReplay | None = None
        self._saved_episode: SavedEpisode | None = None

    def set_env(self, env_class: Callable[..., Env], *args: Any, **kwargs: Any) -> None:
        """Choose the environment. It is built later, inside the agent's own process."""
        if not callable(env_class):
            raise TypeError(f"set_env needs an Env class or factory, got {env_class!r}")
        self._env_factory = lambda: env_class(*args, **kwargs)

    @property
    def games_played(self) -> int:
        """Games this agent finished, counting those of the run it continues."""
        return self._games_played

    def continue_after(self, games_played: int) -> None:
        """Continue a run in which this agent already finished ``games_played`` of its
        ``num_games``: it plays the rest, numbering its games on from there."""
        if not 0 <= games_played <= self.num_games:
            raise ValueError(
                f"agent {self.id}: games_played must be in [0, {self.num_games}], "
                f"got {games_played}"
            )
        self._games_played = games_played

    def add_agent_helper(self, helper: AgentHelper) -> None:
        """Attach the helper of one ComputationTask (done by the Manager)."""
        if helper.name in self.helpers:
            raise ValueError(f"agent {self.id} already has a helper for CT {helper.name!r}")
        self.helpers[helper.name] = helper

    # ----- used by subclasses -------------------------------------------------------------
    def predict(
        self, ct_name: str, inputs: ObservationDict, states: StateDict | None = None
    ) -> tuple[ActionDict, StateDict]:
        """Actions and next states for one instance, from CT ``ct_name``."""
        states = states or {}
        if self._replay is not None:
            answer = self._replay.answer(PREDICT, ct_name, inputs, states)
            if answer is not LIVE:
                return answer
            self._replay = None
        helper = self._helper(ct_name)
        log = self._log
        if log is None:
            actions, next_states = helper.predict(batch_of_one(inputs), batch_of_one(states))
            return unbatch_one(actions), unbatch_one(next_states)
        self._current = (PREDICT, ct_name)
        actions, next_states = helper.predict(batch_of_one(inputs), batch_of_one(states))
        self._current = None
        result = unbatch_one(actions), unbatch_one(next_states)
        # (copies: a view would keep the whole reply batch alive for the episode)
        logged = (
            {k: v.copy() for k, v in result[0].items()},
            {k: v.copy() for k, v in result[1].items()},
        )
        log.calls.append(Call(PREDICT, ct_name, checksum(inputs, states), logged))
        return result

    def init_states(self, ct_name: str) -> StateDict:
        """The states CT ``ct_name``'s model starts an episode with (zeros)."""
        return self._helper(ct_name).initial_states()

    def _store_data(self, ct_name: str, data: dict[str, Any]) -> dict[str, np.ndarray] | None:
        """Store one step for CT ``ct_name``; returns learning costs when it learned."""
        if not self.learning:
            return None
        arrays = {k: np.asarray(v) for k, v in data.items()}
        costs = self._stored(ct_name, arrays)
        for name, values in (costs or {}).items():
            self._game_costs.setdefault(f"{ct_name}/{name}", []).append(float(np.mean(values)))
        return costs

    def _stored(self, ct_name: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """The helper's ``store_data``, or its logged result while an episode is replayed."""
        in_flight = None
        if self._replay is not None:
            answer = self._replay.answer(STORE, ct_name, arrays)
            if answer is not LIVE:
                return answer
            in_flight, self._replay = self._replay.in_flight, None
        helper = self._helper(ct_name)
        log = self._log
        if log is not None:
            self._current = (STORE, ct_name)
        if in_flight is not None and in_flight.batch is not None:
            costs: dict[str, np.ndarray] | None = helper.send_learn(in_flight.batch)
        else:
            costs = helper.store_data(self.alive, arrays)
        if log is not None:
            self._current = None
            log.calls.append(Call(STORE, ct_name, checksum(arrays), costs))
        return costs

    # ----- checkpoints --------------------------------------------------------------------
    def snapshot(self, waiting_on: object | None, with_buffers: bool = True) -> dict[str, Any]:
        """The agent's part of an exact checkpoint, taken while it waits on a CDP for
        ``waiting_on`` (the request it sent): games played, each helper's state and the
        episode so far. Plain values and arrays (``flare.common.snapshots``)."""
        episode = None
        if self._log is not None and self._current is not None:
            kind, ct = self._current
            batch = waiting_on.batch if isinstance(waiting_on, LearnRequest) else None
            episode = self._log.state(InFlight(kind, ct, batch))
        return {
            "games_played": self._games_played,
            "helpers": {n: h.state_dict(with_buffers) for n, h in self.helpers.items()},
            "episode": episode,
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Take up a snapshot (after the helpers are attached, before ``play``): the
        episode it was in is replayed at the start of ``play``."""
        self._games_played = int(snapshot["games_played"])
        for name, helper in self.helpers.items():
            helper.load_state_dict(snapshot["helpers"][name])
        episode = snapshot["episode"]
        self._saved_episode = None if episode is None else SavedEpisode.from_state(episode)

    def _helper(self, ct_name: str) -> AgentHelper:
        try:
            return self.helpers[ct_name]
        except KeyError:
            raise KeyError(
                f"agent {self.id} has no ComputationTask {ct_name!r}; it has {sorted(self.helpers)}"
            ) from None

    def check_env(self, env: Env) -> None:
        """Raise ``EnvMismatchError`` when ``env`` lacks what this agent's CTs' models
        read (what an Act stream's spec is checked with when it opens)."""
        self._check_env(env)

    def _check_env(self, env: Env) -> None:
        """Before the first step: the env gives every observation each CT's model reads, at
        its shape (a model may also read an action it is stored with, e.g. an auxiliary
        task reading the RL task's action). An agent that computes some of its CTs' inputs
        itself overrides this."""
        given = {
            name: tuple(int(d) for d in shape) for name, shape in env.observation_dims().items()
        }
        stored_actions = {name for h in self.helpers.values() for name in h.keys.actions}
        for ct_name, helper in self.helpers.items():
            missing = [
                s.name
                for s in helper.input_specs
                if s.name not in given and s.name not in stored_actions
            ]
            if missing:
                raise EnvMismatchError(
                    f"CT {ct_name!r}'s model reads the observation(s) {missing}, but "
                    f"{type(env).__name__} gives {sorted(given)}: tell the model which "
                    "observation to read (a zoo model's sensor_name=...) or rename the "
                    "simulator's observation"
                )
            for spec in helper.input_specs:
                if spec.name in given and tuple(spec.shape) != given[spec.name]:
                    raise EnvMismatchError(
                        f"CT {ct_name!r}'s model reads {spec.name!r} of shape "
                        f"{tuple(spec.shape)}, but {type(env).__name__} gives it with shape "
                        f"{given[spec.name]}"
                    )

    # ----- the episode loop ---------------------------------------------------------------
    def _reset_env(self) -> ObservationDict:
        assert self.env is not None
        self.alive = NextStep.CONTINUES
        self._game_return = 0.0
        self._game_length = 0
        self._game_costs = {}
        saved, self._saved_episode = self._saved_episode, None
        if saved is not None:
            observations = self._restart(saved)
        else:
            start = self.env.episode_start() if self.checkpointing else None
            observations = self.env.reset()
            self._log = EpisodeLog(start) if self.checkpointing else None
        if not isinstance(observations, dict):
            raise TypeError(f"{type(self.env).__name__}.reset() must return a dict of observations")
        return observations

    def _restart(self, saved: SavedEpisode) -> ObservationDict:
        """Start the checkpoint's episode again, its calls to be answered from its log."""
        assert self.env is not None
        if saved.log.start is None:
            raise ReplayDiverged(f"{type(self.env).__name__} cannot start an episode again")
        observations = self.env.reset_from(saved.log.start)
        self._log = EpisodeLog(saved.log.start, list(saved.log.calls))
        self._replay = EpisodeReplay(saved)
        return observations

    def _step_env(self, actions: ActionDict) -> tuple[ObservationDict, RewardDict, int]:
        assert self.env is not None
        if self._stop_event is not None and self._stop_event.is_set():
            raise StopRequested
        observations, rewards, game_over = self.env.step(actions, self.actrep)
        if not isinstance(observations, dict) or not isinstance(rewards, dict):
            raise TypeError(f"{type(self.env).__name__}.step() must return dicts")
        if game_over not in (-1, 0, 1):
            raise ValueError(f"game_over must be -1, 0 or 1, got {game_over!r}")
        self._game_length += 1
        self._game_return += float(sum(np.sum(v) for v in rewards.values()))
        return observations, rewards, game_over

    def _get_init_states(self) -> StateDict:
        """Initial short-term memory for a new episode; none by default (a memory agent
        returns its CTs' ``init_states``)."""
        return {}

    def _run_one_episode(self) -> GameRecord:
        assert self.env is not None
        observations = self._reset_env()
        states = self._get_init_states()
        game_over: int = GameOutcome.ALIVE
        rewards: RewardDict = {}
        while self.alive == _CONTINUES:
            actions, next_states = self._cts_predict(observations, states)
            next_observations, rewards, game_over = self._step_env(actions)
            self._cts_store_data(observations, actions, states, rewards)
            observations, states = next_observations, next_states
            self.alive = next_step_after(game_over, self.env.time_out())
        # The final observation is stored too, so the last transition has a next step.
        actions, _ = self._cts_predict(observations, states)
        zero_rewards = {k: np.zeros_like(np.asarray(v)) for k, v in rewards.items()}
        self._cts_store_data(observations, actions, states, zero_rewards)
        costs = {key: float(np.mean(values)) for key, values in self._game_costs.items()}
        main_cost = next(
            (costs[f"{ct}/cost"] for ct in self.helpers if f"{ct}/cost" in costs), None
        )
        self._games_played += 1
        return GameRecord(
            agent=self.id,
            return_=self._game_return,
            length=self._game_length,
            success=game_over > 0,
            cost=main_cost,
            costs=costs,
            agent_game=self._games_played - 1,
        )

    @abstractmethod
    def _cts_predict(
        self, observations: ObservationDict, states: StateDict
    ) -> tuple[ActionDict, StateDict]:
        """Ask the CTs for this step's actions; returns ``(actions, next_states)``."""

    @abstractmethod
    def _cts_store_data(
        self,
        observations: ObservationDict,
        actions: ActionDict,
        states: StateDict,
        rewards: RewardDict,
    ) -> None:
        """Store this step's data with each CT, through ``self._store_data``."""

    # ----- playing ------------------------------------------------------------------------
    def _interrupt_episode(self, reports: Reports, reason: str) -> None:
        """Not a game over: the episode's data stays, no transition leaves its last step."""
        for helper in self.helpers.values():
            helper.interrupt_episode()
        reports.put(GameInterrupted(self.id, reason))

    def _report_servers(self, reports: Reports) -> None:
        """Report the servers whose health changed, when the env is a farm's client (it
        has ``farm_health()``, as ``RemoteEnv`` does); a server never seen failing is
        live and not reported."""
        farm_health = getattr(self.env, "farm_health", None)
        if farm_health is None:
            return
        changed = []
        for server in farm_health():
            seen = self._servers_seen.get(server.address)
            if seen is None and server.state == "live" and server.failures == 0:
                continue
            if seen != server:
                self._servers_seen[server.address] = server
                changed.append(server)
        if changed:
            reports.put(FarmHealth(self.id, tuple(changed)))

    def play_session(self, env: Env, stop: StopFlag, reports: Reports) -> None:
        """Play on ``env`` until it ends, the agent has played its games or ``stop`` is
        set: how an agent driven from outside plays (a simulator's Act stream, whose env
        the learner builds; the helpers' channels are attached by the caller and stay
        open). ``EnvInterrupted`` cuts the episode in play short and play goes on;
        ``SessionEnded`` ends the session (reported interrupted when it came mid-episode).
        ``StopRequested`` and ``CDPClosed`` are the caller's to handle."""
        self._stop_event = stop
        self.env = env
        try:
            while self._games_played < self.num_games and not stop.is_set():
                try:
                    reports.put(self._run_one_episode())
                except EnvInterrupted as err:
                    ended = err if isinstance(err, SessionEnded) else None
                    if ended is None or ended.mid_episode:
                        self._interrupt_episode(reports, str(err))
                    if ended is not None:
                        return
        finally:
            self.env = None

    def play(self, stop_event: Event, reports: Queue) -> None:
        """Play ``num_games`` games (or until ``stop_event``), report each one, then close
        the helpers and the env. Runs inside an agent process (see ``agent_group``)."""
        self._stop_event = stop_event
        try:
            if self._env_factory is None:
                raise RuntimeError(f"agent {self.id}: call set_env() before starting it")
            self.env = self._env_factory()
            self._check_env(self.env)
            interrupted_in_a_row = 0
            while self._games_played < self.num_games and not stop_event.is_set():
                try:
                    reports.put(self._run_one_episode())
                    interrupted_in_a_row = 0
                    self._report_servers(reports)
                except ReplayDiverged as err:
                    # the checkpoint's episode could not be taken up: it is dropped
                    self._replay = None
                    self._interrupt_episode(reports, f"resumed mid-episode: {err}")
                except EnvInterrupted as err:
                    self._interrupt_episode(reports, str(err))
                    self._report_servers(reports)
                    interrupted_in_a_row += 1
                    if interrupted_in_a_row >= MAX_INTERRUPTIONS_IN_A_ROW:
                        raise RuntimeError(
                            f"agent {self.id}: {interrupted_in_a_row} episodes in a row were "
                            f"interrupted; the last: {err}"
                        ) from err
            reports.put(AgentFinished(self.id))
        except (StopRequested, CDPClosed):
            reports.put(AgentFinished(self.id))
        except EnvMismatchError as err:
            reports.put(EnvMismatch(self.id, str(err)))
        except BaseException:
            reports.put(AgentFailed(self.id, traceback.format_exc()))
        finally:
            for helper in self.helpers.values():
                helper.close()
            if self.env is not None:
                try:
                    self.env.close()
                except Exception:  # noqa: BLE001 - closing must not hide the real outcome
                    pass
