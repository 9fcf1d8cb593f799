"""One environment instance on a simulator server: checks requests, steps the Env.

This is the simulation side of the servicer, kept apart from gRPC so it can be tested
and reasoned about on its own. Every problem is a ``SimulatorError`` with its status.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
import numpy as np

from flare.bridge.codec import TensorError, decode, dtype_to_proto, encode_into
from flare.bridge.errors import SimulatorError, invalid, precondition
from flare.framework.env import Env
from flare.framework.env_spec import ArraySpec, Discrete, EnvSpec, Language
from flare.simulator.v1 import simulator_pb2 as pb


def _internal(what: str, err: BaseException) -> SimulatorError:
    return SimulatorError(grpc.StatusCode.INTERNAL, f"{what} raised {type(err).__name__}: {err}")


@dataclass(frozen=True)
class StepResult:
    """One step's checked results, as numpy arrays by name."""

    observations: dict[str, np.ndarray]
    rewards: dict[str, np.ndarray]
    game_over: int
    time_out: bool


class Session:
    """An Env plus the episode state the contract needs (reset before step, none after end)."""

    def __init__(self, session_id: str, env: Env, spec: EnvSpec) -> None:
        self.id = session_id
        self.env = env
        self.spec = spec
        self.lock = threading.Lock()
        self.last_used = time.monotonic()
        self._episode_running = False
        self.closed = False
        self._actions = {s.name: s for s in spec.actions}
        self._observations = {s.name: s for s in spec.observations}

    def touch(self) -> None:
        """Mark the session used now; a closed one (e.g. reaped while idle) is NOT_FOUND."""
        if self.closed:
            raise SimulatorError(
                grpc.StatusCode.NOT_FOUND, f"session {self.id} was closed (idle past the timeout)"
            )
        self.last_used = time.monotonic()

    def reset_arrays(self) -> dict[str, np.ndarray]:
        """Start an episode; the observations, checked against the spec."""
        with self.lock:
            self.touch()
            try:
                observations = self.env.reset()
            except Exception as err:  # noqa: BLE001 - the user's env: report, never die
                self._episode_running = False
                raise _internal("the environment's reset()", err) from err
            checked = self._check_observations(observations)
            self._episode_running = True
            return checked

    def reset(self) -> pb.ResetResponse:
        out = pb.ResetResponse()
        _fill(out.observations, self.reset_arrays(), "observations")
        return out

    def step_arrays(self, actions: dict[str, np.ndarray], actrep: int) -> StepResult:
        """One step with already-checked actions; the results, checked against the spec."""
        if actrep < 0:
            raise invalid(f"actrep must be >= 0 (0 means 1), got {actrep}")
        with self.lock:
            self.touch()
            if not self._episode_running:
                raise precondition(
                    f"session {self.id}: step before reset, or after the episode ended "
                    "(game over or time-out); call Reset first"
                )
            try:
                observations, rewards, game_over = self.env.step(actions, actrep or 1)
                time_out = bool(self.env.time_out())
            except Exception as err:  # noqa: BLE001
                self._episode_running = False
                raise _internal("the environment's step()", err) from err
            if game_over not in (-1, 0, 1):
                self._episode_running = False
                raise SimulatorError(
                    grpc.StatusCode.INTERNAL, f"the environment returned game_over={game_over!r}"
                )
            if game_over != 0 or time_out:
                self._episode_running = False
            return StepResult(
                self._check_observations(observations),
                self._check_rewards(rewards),
                int(game_over),
                time_out,
            )

    def step(self, request: pb.StepRequest, out: pb.StepResponse | None = None) -> pb.StepResponse:
        """One step; the result is written into ``out`` (e.g. a stream response's field)."""
        result = self.step_arrays(self.decode_actions(request.actions), request.actrep)
        out = pb.StepResponse() if out is None else out
        _fill(out.observations, result.observations, "observations")
        _fill(out.rewards, result.rewards, "rewards")
        out.game_over = result.game_over
        out.time_out = result.time_out
        return out

    def decode_actions(
        self, tensors: Mapping[str, pb.Tensor], batch: int | None = None
    ) -> dict[str, np.ndarray]:
        """Check every action against the spec (name, dtype, shape, range) and decode it.

        With ``batch``, each tensor holds that many rows of actions.
        """
        for name in tensors:
            if name not in self._actions:
                raise invalid(
                    f"unknown action {name!r}; the spec's actions are {list(self._actions)}"
                )
        for name in self._actions:
            if name not in tensors:
                raise invalid(f"missing action {name!r}")
        return {
            name: _decode_action(spec, tensors[name], batch) for name, spec in self._actions.items()
        }

    def _check_observations(self, observations: object) -> dict[str, np.ndarray]:
        if not isinstance(observations, Mapping):
            raise SimulatorError(
                grpc.StatusCode.INTERNAL, "the environment must return a dict of observations"
            )
        checked = {}
        for name, spec in self._observations.items():
            if name not in observations:
                raise SimulatorError(
                    grpc.StatusCode.INTERNAL, f"the environment did not return observation {name!r}"
                )
            array = np.asarray(observations[name])
            if array.shape != spec.shape:
                raise SimulatorError(
                    grpc.StatusCode.INTERNAL,
                    f"observation {name!r} has shape {array.shape}, the spec says {spec.shape}",
                )
            if spec.dtype != np.dtype(object):
                array = array.astype(spec.dtype, copy=False)
            checked[name] = array
        return checked

    def _check_rewards(self, rewards: object) -> dict[str, np.ndarray]:
        if not isinstance(rewards, Mapping):
            raise SimulatorError(
                grpc.StatusCode.INTERNAL, "the environment must return a dict of rewards"
            )
        checked = {}
        for name in self.spec.reward_names:
            if name not in rewards:
                raise SimulatorError(
                    grpc.StatusCode.INTERNAL, f"the environment did not return reward {name!r}"
                )
            checked[name] = np.asarray(rewards[name], dtype=np.float32).reshape(-1)
        return checked

    def close(self) -> None:
        with self.lock:
            self._episode_running = False
            self.closed = True
            try:
                self.env.close()
            except Exception:  # noqa: BLE001 - closing must never take the server down
                pass


def _decode_action(spec: ArraySpec, tensor: pb.Tensor, batch: int | None = None) -> np.ndarray:
    field = f"actions[{spec.name!r}]"
    wanted = dtype_to_proto(spec.dtype)
    if tensor.dtype != wanted:
        raise invalid(
            f"{field}: dtype {_dtype_name(tensor.dtype)}, the spec says {_dtype_name(wanted)}"
        )
    shape = spec.shape if batch is None else (batch, *spec.shape)
    if tuple(tensor.shape) != shape:
        raise invalid(f"{field}: shape {list(tensor.shape)}, the spec says {list(shape)}")
    try:
        array = decode(tensor, field)
    except TensorError as err:
        raise invalid(str(err)) from None
    limit = None
    if isinstance(spec.kind, Discrete):
        limit = spec.kind.num_values
    elif isinstance(spec.kind, Language):
        limit = spec.kind.vocabulary_size
    if limit is not None and array.size == 1:  # the common case, without array temporaries
        value = array.item()
        if not 0 <= value < limit:
            raise invalid(f"{field}: value {value} is outside 0..{limit - 1}")
    elif limit is not None and array.size:
        bad = array[(array < 0) | (array >= limit)]
        if bad.size:
            raise invalid(f"{field}: value {bad.reshape(-1)[0]} is outside 0..{limit - 1}")
    return array


def _fill(tensors, arrays: Mapping[str, np.ndarray], field: str) -> None:
    """Encode each array into its entry of a message's tensor map, in place."""
    for name, array in arrays.items():
        encode_into(tensors[name], array, f"{field}[{name!r}]")


def _dtype_name(dtype: int) -> str:
    return pb.DType.Name(dtype) if dtype in pb.DType.values() else str(dtype)
