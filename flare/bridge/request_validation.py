"""What a spec allows, precomputed once per spec so each step checks with few operations.

Actions come from the client: a bad one is INVALID_ARGUMENT. Observations and rewards
come from the user's Env: a bad one is INTERNAL (the simulator broke the contract).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
import numpy as np

from flare.bridge.codec import (
    TensorError,
    decode,
    decode_numeric,
    dtype_from_proto,
    dtype_to_proto,
    encode_into,
)
from flare.bridge.errors import SimulatorError, invalid, quoted
from flare.framework.env_spec import ArraySpec, Discrete, EnvSpec, Language
from flare.simulator.v1 import simulator_pb2 as pb

# the header of a one-value reward tensor; never modified, only copied into responses
_ONE_FLOAT32 = pb.Tensor(dtype=pb.DTYPE_FLOAT32, shape=[1])


def broken(message: str) -> SimulatorError:
    """The environment broke the contract (its own output is wrong)."""
    return SimulatorError(grpc.StatusCode.INTERNAL, message)


@dataclass(frozen=True, slots=True)
class ActionCheck:
    """One action of the spec: the wire dtype, shape and value range a request must have
    (also what checks a tensor a client sends in another field: an Act stream's
    observations)."""

    name: str
    wire: pb.DType
    dtype: np.dtype
    shape: tuple[int, ...]
    limit: int | None  # discrete values or vocabulary size: 0 .. limit - 1
    shape_list: list[int]  # (a protobuf repeated field compares with a list fastest)
    numeric: bool
    nbytes: int  # of one numeric action on the wire (0 for strings and bools)
    group: str = "actions"  # the request's field the tensor is in

    @classmethod
    def of(cls, spec: ArraySpec, group: str = "actions") -> ActionCheck:
        limit = None
        if isinstance(spec.kind, Discrete):
            limit = spec.kind.num_values
        elif isinstance(spec.kind, Language):
            limit = spec.kind.vocabulary_size
        wire = dtype_to_proto(spec.dtype)
        shape = tuple(spec.shape)
        numeric = wire not in (pb.DTYPE_STRING, pb.DTYPE_BOOL)
        dtype = dtype_from_proto(wire)
        nbytes = math.prod(shape) * dtype.itemsize if numeric else 0
        return cls(spec.name, wire, dtype, shape, limit, list(shape), numeric, nbytes, group)

    @property
    def field(self) -> str:
        return f"{self.group}[{self.name!r}]"

    def decode(self, tensor: pb.Tensor, batch: int | None = None) -> np.ndarray:
        """The checked action (with ``batch``: that many rows of it)."""
        if tensor.dtype != self.wire:
            raise invalid(
                f"{self.field}: dtype {dtype_name(tensor.dtype)}, "
                f"the spec says {dtype_name(self.wire)}"
            )
        if batch is None:
            shape, shape_list = self.shape, self.shape_list
        else:
            shape_list = [batch, *self.shape]
            shape = tuple(shape_list)
        if tensor.shape != shape_list:
            raise invalid(f"{self.field}: shape {list(tensor.shape)}, the spec says {shape_list}")
        try:
            if self.numeric:
                nbytes = self.nbytes if batch is None else None
                array = decode_numeric(tensor.data, self.dtype, shape, self.field, nbytes)
            else:
                array = decode(tensor, self.field)
        except TensorError as err:
            raise invalid(str(err)) from None
        if self.limit is not None:
            self._check_range(array, self.limit)
        return array

    def _check_range(self, array: np.ndarray, limit: int) -> None:
        if array.size == 1:  # the common case: one discrete value
            value = array.item()
            if not 0 <= value < limit:
                raise invalid(f"{self.field}: value {value} is outside 0..{limit - 1}")
        elif array.size:
            bad = array[(array < 0) | (array >= limit)]
            if bad.size:
                raise invalid(f"{self.field}: value {bad.reshape(-1)[0]} is outside 0..{limit - 1}")


@dataclass(frozen=True, slots=True)
class ObservationCheck:
    """One observation of the spec: what the Env must return under its name."""

    name: str
    dtype: np.dtype  # the wire's (little-endian) dtype, or object for strings
    shape: tuple[int, ...]
    template: pb.Tensor | None  # dtype and shape already set (numeric only): copied, then data

    @classmethod
    def of(cls, spec: ArraySpec) -> ObservationCheck:
        wire = dtype_to_proto(spec.dtype)
        shape = tuple(spec.shape)
        template = None if wire == pb.DTYPE_STRING else pb.Tensor(dtype=wire, shape=shape)
        return cls(spec.name, dtype_from_proto(wire), shape, template)

    def encode_into(self, tensor: pb.Tensor, array: np.ndarray) -> None:
        """Encode an array ``take`` returned (the spec's dtype and shape) into ``tensor``."""
        if self.template is None:
            encode_into(tensor, array, f"observation {self.name!r}")
        else:  # one copy of the ready-made header beats setting dtype and shape anew
            tensor.CopyFrom(self.template)
            tensor.data = array.tobytes()

    def take(self, observations: Mapping) -> np.ndarray:
        """The named observation as an array of the spec's dtype and shape."""
        try:
            value = observations[self.name]
        except KeyError:
            raise broken(f"the environment did not return observation {self.name!r}") from None
        array = value if type(value) is np.ndarray else np.asarray(value)
        if array.shape != self.shape:
            raise broken(
                f"observation {self.name!r} has shape {array.shape}, the spec says {self.shape}"
            )
        if array.dtype != self.dtype and self.dtype != np.dtype(object):
            array = array.astype(self.dtype)
        return array


@dataclass(frozen=True)
class SpecChecks:
    """Every check of one spec, built once when its session opens."""

    actions: tuple[ActionCheck, ...]
    observations: tuple[ObservationCheck, ...]
    reward_names: tuple[str, ...]

    @classmethod
    def of(cls, spec: EnvSpec) -> SpecChecks:
        return cls(
            tuple(ActionCheck.of(s) for s in spec.actions),
            tuple(ObservationCheck.of(s) for s in spec.observations),
            tuple(spec.reward_names),
        )

    def decode_actions(
        self, tensors: Mapping[str, pb.Tensor], batch: int | None = None
    ) -> dict[str, np.ndarray]:
        """Every action checked (name, dtype, shape, range) and decoded."""
        return decode_checked(self.actions, tensors, "action", batch)

    def observations_of(self, observations: object) -> dict[str, np.ndarray]:
        if type(observations) is not dict and not isinstance(observations, Mapping):
            raise broken("the environment must return a dict of observations")
        return {check.name: check.take(observations) for check in self.observations}

    def fill_observations(self, tensors, observations: Mapping[str, np.ndarray]) -> None:
        """Encode observations ``observations_of`` checked into a message's tensor map."""
        for check in self.observations:
            check.encode_into(tensors[check.name], observations[check.name])

    def fill_rewards(self, tensors, rewards: Mapping[str, np.ndarray]) -> None:
        """Encode rewards ``rewards_of`` checked into a message's tensor map."""
        for name, value in rewards.items():
            if value.size == 1:  # the common case: the header is ready-made
                tensor = tensors[name]
                tensor.CopyFrom(_ONE_FLOAT32)
                tensor.data = value.tobytes()
            else:
                encode_into(tensors[name], value, f"reward {name!r}")

    def rewards_of(self, rewards: object) -> dict[str, np.ndarray]:
        if type(rewards) is not dict and not isinstance(rewards, Mapping):
            raise broken("the environment must return a dict of rewards")
        checked = {}
        for name in self.reward_names:
            if name not in rewards:
                raise broken(f"the environment did not return reward {name!r}")
            value = rewards[name]
            if type(value) is not np.ndarray or value.dtype != np.float32 or value.ndim != 1:
                value = np.asarray(value, dtype=np.float32).reshape(-1)
            checked[name] = value
        return checked


def decode_checked(
    checks: tuple[ActionCheck, ...],
    tensors: Mapping[str, pb.Tensor],
    what: str,
    batch: int | None = None,
) -> dict[str, np.ndarray]:
    """Every tensor ``checks`` names, checked and decoded; a missing or an unknown name
    is INVALID_ARGUMENT (``what`` names the kind: "action", "observation")."""
    decoded = {}
    for check in checks:
        if check.name not in tensors:  # (indexing a protobuf map would add the key)
            _refuse_unknown(checks, tensors, what)
            raise invalid(f"missing {what} {check.name!r}")
        decoded[check.name] = check.decode(tensors[check.name], batch)
    if len(tensors) != len(decoded):
        _refuse_unknown(checks, tensors, what)
    return decoded


def _refuse_unknown(
    checks: tuple[ActionCheck, ...], tensors: Mapping[str, pb.Tensor], what: str
) -> None:
    known = [check.name for check in checks]
    for name in tensors:
        if name not in known:
            raise invalid(f"unknown {what} {quoted(name)}; the spec's {what}s are {known}")


def dtype_name(dtype: int) -> str:
    """A wire dtype's name (DTYPE_FLOAT32), or its number when it has none."""
    return pb.DType.Name(dtype) if dtype in pb.DType.values() else str(dtype)
