"""One environment instance on a simulator server: checks requests, steps the Env.

This is the simulation side of the servicer, kept apart from gRPC so it can be tested
and reasoned about on its own. Every problem is a ``SimulatorError`` with its status.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, NamedTuple

import grpc
import numpy as np

from flare.bridge.codec import encode_into
from flare.bridge.errors import SimulatorError, invalid, precondition
from flare.bridge.request_validation import SpecChecks, broken
from flare.framework.env import Env
from flare.framework.env_spec import EnvSpec
from flare.simulator.v1 import simulator_pb2 as pb


def not_running(session_id: str) -> SimulatorError:
    return precondition(
        f"session {session_id}: step before reset, or after the episode ended "
        "(game over or time-out); call Reset first"
    )


def check_actrep(actrep: int) -> None:
    if actrep < 0:
        raise invalid(f"actrep must be >= 0 (0 means 1), got {actrep}")


def _internal(what: str, err: BaseException) -> SimulatorError:
    return broken(f"{what} raised {type(err).__name__}: {err}")


def open_session(
    env_factory: Callable[..., Env], session_id: str, config: dict[str, str], seed: int | None
) -> Session:
    """A new session whose Env is ``env_factory(**config, seed=seed)`` (no seed: not passed).

    A factory that refuses the config is INVALID_ARGUMENT, naming the config.
    """
    kwargs: dict[str, Any] = dict(config)
    if seed is not None:
        kwargs["seed"] = seed
    try:
        env = env_factory(**kwargs)
    except (TypeError, ValueError, KeyError) as err:
        raise invalid(f"config {config} was refused: {err}") from err
    except Exception as err:  # noqa: BLE001 - e.g. an unknown game
        raise invalid(f"could not build the environment: {type(err).__name__}: {err}") from err
    try:
        spec = env.spec()
    except Exception as err:  # noqa: BLE001
        raise _internal("the environment's spec()", err) from err
    return Session(session_id, env, spec, partial(env_factory, **dict(config)))


class StepResult(NamedTuple):
    """One step's checked results, as numpy arrays by name."""

    observations: dict[str, np.ndarray]
    rewards: dict[str, np.ndarray]
    game_over: int
    time_out: bool

    def fill(self, checks: SpecChecks, out: pb.StepResponse | None = None) -> pb.StepResponse:
        """Encode into a step response (e.g. a stream response's field), in place."""
        out = pb.StepResponse() if out is None else out
        checks.fill_observations(out.observations, self.observations)
        checks.fill_rewards(out.rewards, self.rewards)
        out.game_over = self.game_over
        out.time_out = self.time_out
        return out


class WireCalls:
    """Reset and Step as wire messages, for any session that has ``checks``,
    ``reset_arrays`` and ``step_arrays`` (in this process or in an env worker)."""

    checks: SpecChecks

    def check_running(self) -> None:
        """FAILED_PRECONDITION unless an episode is running: StepMany checks every row with
        this before it steps any, so a bad row never leaves the others stepped."""
        raise NotImplementedError

    def reset_arrays(self, seed: int | None = None) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def step_arrays(self, actions: dict[str, np.ndarray], actrep: int) -> StepResult:
        raise NotImplementedError

    def reset(self, seed: int | None = None) -> pb.ResetResponse:
        out = pb.ResetResponse()
        self.checks.fill_observations(out.observations, self.reset_arrays(seed))
        return out

    def step(self, request: pb.StepRequest, out: pb.StepResponse | None = None) -> pb.StepResponse:
        """One step; the result is written into ``out`` (e.g. a stream response's field)."""
        actions = self.checks.decode_actions(request.actions)
        return self.step_arrays(actions, request.actrep).fill(self.checks, out)


class Session(WireCalls):
    """An Env plus the episode state the contract needs (reset before step, none after end)."""

    def __init__(
        self,
        session_id: str,
        env: Env,
        spec: EnvSpec,
        rebuild: Callable[..., Env] | None = None,
    ) -> None:
        self.id = session_id
        self.env = env
        self.spec = spec
        # builds the env again with another seed (``rebuild(seed=...)``), for a reset
        # with a seed that the env cannot take itself
        self._rebuild = rebuild
        self.checks = SpecChecks.of(spec)
        self.lock = threading.Lock()
        self.last_used = time.monotonic()
        self._episode_running = False
        self.closed = False

    def touch(self) -> None:
        """Mark the session used now; a closed one (e.g. reaped while idle) is NOT_FOUND."""
        if self.closed:
            raise SimulatorError(
                grpc.StatusCode.NOT_FOUND, f"session {self.id} was closed (idle past the timeout)"
            )
        self.last_used = time.monotonic()

    def check_running(self) -> None:
        self.touch()
        if not self._episode_running:
            raise not_running(self.id)

    def reset_arrays(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start an episode (reseeded first, with ``seed``); the observations, checked
        against the spec."""
        with self.lock:
            self.touch()
            if seed is not None:
                self._reseed(seed)
            try:
                observations = self.env.reset()
            except Exception as err:  # noqa: BLE001 - the user's env: report, never die
                self._episode_running = False
                raise _internal("the environment's reset()", err) from err
            checked = self.checks.observations_of(observations)
            self._episode_running = True
            return checked

    def _reseed(self, seed: int) -> None:
        self._episode_running = False
        try:
            if self.env.reseed(seed):
                return
        except Exception as err:  # noqa: BLE001
            raise _internal("the environment's reseed()", err) from err
        if self._rebuild is None:
            raise precondition(f"session {self.id}: this environment cannot be reseeded")
        try:
            env = self._rebuild(seed=seed)
            spec = env.spec()
        except Exception as err:  # noqa: BLE001 - the config built an env before
            raise _internal("building the environment again with a new seed", err) from err
        if spec != self.spec:
            env.close()
            raise broken("the environment built again with a new seed has another spec")
        old, self.env = self.env, env
        try:
            old.close()
        except Exception:  # noqa: BLE001 - closing must never fail a reset
            pass

    def step_arrays(self, actions: dict[str, np.ndarray], actrep: int) -> StepResult:
        """One step with already-checked actions; the results, checked against the spec."""
        check_actrep(actrep)
        with self.lock:
            self.touch()
            if not self._episode_running:
                raise not_running(self.id)
            try:
                observations, rewards, game_over = self.env.step(actions, actrep or 1)
                time_out = bool(self.env.time_out())
            except Exception as err:  # noqa: BLE001
                self._episode_running = False
                raise _internal("the environment's step()", err) from err
            if game_over not in (-1, 0, 1):
                self._episode_running = False
                raise broken(f"the environment returned game_over={game_over!r}")
            if game_over != 0 or time_out:
                self._episode_running = False
            return StepResult(
                self.checks.observations_of(observations),
                self.checks.rewards_of(rewards),
                int(game_over),
                time_out,
            )

    def close(self) -> None:
        with self.lock:
            self._episode_running = False
            self.closed = True
            try:
                self.env.close()
            except Exception:  # noqa: BLE001 - closing must never take the server down
                pass


def fill_tensors(tensors, arrays: Mapping[str, np.ndarray]) -> None:
    """Encode each (checked) array into its entry of a message's tensor map, in place."""
    for name, array in arrays.items():
        encode_into(tensors[name], array)
