"""EnvSpec <-> ``flare.simulator.v1.EnvSpec``."""

from __future__ import annotations

import numpy as np

from flare.bridge.codec import dtype_from_proto, dtype_to_proto
from flare.framework.env_spec import ArraySpec, Continuous, Discrete, EnvSpec, Language
from flare.simulator.v1 import simulator_pb2 as pb


def _array_to_proto(spec: ArraySpec) -> pb.TensorSpec:
    message = pb.TensorSpec(name=spec.name, dtype=dtype_to_proto(spec.dtype), shape=spec.shape)
    if isinstance(spec.kind, Discrete):
        message.discrete.num_values = spec.kind.num_values
    elif isinstance(spec.kind, Continuous):
        message.continuous.low.extend(spec.kind.low)
        message.continuous.high.extend(spec.kind.high)
    elif isinstance(spec.kind, Language):
        message.language.vocabulary_size = spec.kind.vocabulary_size
    return message


def _array_from_proto(message: pb.TensorSpec) -> ArraySpec:
    which = message.WhichOneof("kind")
    kind: Discrete | Continuous | Language | None = None
    if which == "discrete":
        kind = Discrete(message.discrete.num_values)
    elif which == "continuous":
        kind = Continuous(tuple(message.continuous.low), tuple(message.continuous.high))
    elif which == "language":
        kind = Language(message.language.vocabulary_size)
    dtype = dtype_from_proto(message.dtype, f"spec of {message.name!r}")
    return ArraySpec(message.name, np.dtype(dtype), tuple(message.shape), kind)


def spec_to_proto(spec: EnvSpec) -> pb.EnvSpec:
    return pb.EnvSpec(
        observations=[_array_to_proto(s) for s in spec.observations],
        actions=[_array_to_proto(s) for s in spec.actions],
        reward_names=spec.reward_names,
        max_episode_steps=spec.max_episode_steps,
    )


def spec_from_proto(message: pb.EnvSpec) -> EnvSpec:
    return EnvSpec(
        observations=tuple(_array_from_proto(s) for s in message.observations),
        actions=tuple(_array_from_proto(s) for s in message.actions),
        reward_names=tuple(message.reward_names),
        max_episode_steps=message.max_episode_steps,
    )
