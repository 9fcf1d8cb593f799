"""What an Act stream may send: its open (spec, version, config) and each step.

The simulator is the client here, so everything it sends is untrusted: a spec the run's
models cannot read is refused when the stream opens, and a bad observation or reward
ends the stream with the same codes (and messages naming the field) as a bad action
sent to a simulator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from flare.bridge.codec import TensorError, decode
from flare.bridge.errors import invalid, precondition
from flare.bridge.quoting import quoted
from flare.bridge.request_validation import ActionCheck, decode_checked, dtype_name
from flare.bridge.specs import spec_from_proto
from flare.framework.env_spec import ArraySpec, Continuous, Discrete, EnvSpec, Language
from flare.learner.v1 import learner_pb2 as pb
from flare.simulator.v1 import simulator_pb2 as sim_pb

ACT_PROTOCOL_VERSION = pb.ACT_PROTOCOL_VERSION_1
CONFIG_KEYS = ("name",)
MAX_NAME = 64
MAX_SPEC_ENTRIES = 64  # observations or actions or rewards
MAX_RANK = 8


@dataclass(frozen=True)
class ActStep:
    """One decoded step: ``first`` when it starts an episode (rewards then empty)."""

    observations: dict[str, np.ndarray]
    rewards: dict[str, np.ndarray]
    game_over: int
    time_out: bool
    new_episode: bool


def check_open(message: pb.ActOpen, run_spec: EnvSpec) -> tuple[EnvSpec, str]:
    """The stream's spec and name, once ``message`` is found acceptable for a run whose
    agents were built for ``run_spec`` (observations its models read, its actions and
    rewards)."""
    if message.protocol_version != ACT_PROTOCOL_VERSION:
        raise precondition(
            f"protocol_version: the learner speaks ACT_PROTOCOL_VERSION_1, the client "
            f"{_version_name(message.protocol_version)}"
        )
    for key in message.config:
        if key not in CONFIG_KEYS:
            raise invalid(f"config: unknown key {quoted(key)}; the learner reads {CONFIG_KEYS}")
    name = message.config.get("name", "")
    if len(name) > MAX_NAME:
        raise invalid(f"config['name']: longer than {MAX_NAME} characters")
    if not message.HasField("spec"):
        raise invalid("spec: required")
    try:
        spec = spec_from_proto(message.spec)
    except (TensorError, ValueError) as err:
        raise invalid(f"spec: {err}") from None
    _check_spec_shape(spec)
    _check_against_run(spec, run_spec)
    return spec, name


def _check_spec_shape(spec: EnvSpec) -> None:
    """A spec that is well formed on its own: names unique and non-empty, shapes sane."""
    for group, entries in (("observations", spec.observations), ("actions", spec.actions)):
        if len(entries) > MAX_SPEC_ENTRIES:
            raise invalid(f"spec.{group}: more than {MAX_SPEC_ENTRIES} entries")
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            where = f"spec.{group}[{i}]"
            if not entry.name:
                raise invalid(f"{where}.name: empty")
            if entry.name in seen:
                raise invalid(f"{where}.name: {quoted(entry.name)} appears twice")
            seen.add(entry.name)
            if len(entry.shape) > MAX_RANK or any(d < 0 for d in entry.shape):
                raise invalid(f"{where}.shape: {list(entry.shape)} is not a tensor shape")
    if not spec.observations:
        raise invalid("spec.observations: none")
    if not spec.reward_names or len(set(spec.reward_names)) != len(spec.reward_names):
        raise invalid("spec.reward_names: give each reward name once")
    if spec.max_episode_steps < 0:
        raise invalid(f"spec.max_episode_steps: {spec.max_episode_steps} is negative")


def _check_against_run(spec: EnvSpec, run_spec: EnvSpec) -> None:
    """The run's actions and rewards exactly, and every observation of the run's spec
    with its dtype and shape (the agent then checks what its models read)."""
    given = {s.name: s for s in spec.observations}
    for wanted in run_spec.observations:
        have = given.get(wanted.name)
        if have is None:
            continue  # (the agent's own check says whether a model reads it)
        where = f"spec.observations[{spec.observations.index(have)}]"
        if have.dtype != wanted.dtype or have.shape != wanted.shape:
            raise invalid(
                f"{where}: {have.name!r} is {_describe(have)}, the run's models read "
                f"{_describe(wanted)}"
            )
    actions = {s.name: s for s in spec.actions}
    for wanted in run_spec.actions:
        have = actions.get(wanted.name)
        if have is None:
            raise invalid(
                f"spec.actions: no action {wanted.name!r}; the run's actions are "
                f"{[s.name for s in run_spec.actions]}"
            )
        where = f"spec.actions[{spec.actions.index(have)}]"
        if have.dtype != wanted.dtype or have.shape != wanted.shape:
            raise invalid(f"{where}: {have.name!r} is {_describe(have)}, the run's is "
                          f"{_describe(wanted)}")  # fmt: skip
        if not _same_kind(have, wanted):
            raise invalid(f"{where}: {have.name!r} is {_kind(have)}, the run's is {_kind(wanted)}")
    extra = [s.name for s in spec.actions if s.name not in {w.name for w in run_spec.actions}]
    if extra:
        raise invalid(f"spec.actions: {quoted(extra[0])} is not an action of the run")
    if set(spec.reward_names) != set(run_spec.reward_names):
        raise invalid(
            f"spec.reward_names: {[quoted(n) for n in spec.reward_names]}, the run's are "
            f"{list(run_spec.reward_names)}"
        )


def _same_kind(a: ArraySpec, b: ArraySpec) -> bool:
    if isinstance(a.kind, Continuous) and isinstance(b.kind, Continuous):
        return np.allclose(a.kind.low, b.kind.low) and np.allclose(a.kind.high, b.kind.high)
    return a.kind == b.kind


def _describe(spec: ArraySpec) -> str:
    return f"{np.dtype(spec.dtype).name} of shape {list(spec.shape)}"


def _kind(spec: ArraySpec) -> str:
    kind = spec.kind
    if isinstance(kind, Discrete):
        return f"discrete with {kind.num_values} values"
    if isinstance(kind, Language):
        return f"language with {kind.vocabulary_size} words"
    if isinstance(kind, Continuous):
        return "continuous within its bounds"
    return "of no kind"


def _version_name(version: int) -> str:
    if version in pb.ActProtocolVersion.values():
        return pb.ActProtocolVersion.Name(version)
    return str(version)


class StepChecks:
    """Decodes the steps of one stream against its spec."""

    def __init__(self, spec: EnvSpec) -> None:
        self.observations = tuple(ActionCheck.of(s, "observations") for s in spec.observations)
        self.reward_names = tuple(spec.reward_names)
        self._reward_sizes: dict[str, int] = {}

    def decode(self, message: pb.ActStep, first: bool) -> ActStep:
        """``first``: whether the step starts an episode whatever it says (the stream's
        first, or the one after an episode ended)."""
        observations = decode_checked(self.observations, message.observations, "observation")
        starts = first or message.new_episode
        game_over, time_out = message.game_over, message.time_out
        if starts:
            if len(message.rewards) or game_over or time_out:
                raise invalid(
                    "rewards, game_over and time_out must be unset on an episode's first step"
                )
            return ActStep(observations, {}, 0, False, True)
        if game_over not in (-1, 0, 1):
            raise invalid(f"game_over: {game_over}, it must be -1, 0 or 1")
        if game_over and time_out:
            raise invalid("game_over and time_out: both set; a game over wins, send it alone")
        return ActStep(observations, self._rewards(message.rewards), game_over, time_out, False)

    def _rewards(self, tensors: Mapping[str, sim_pb.Tensor]) -> dict[str, np.ndarray]:
        rewards = {}
        for name in tensors:
            if name not in self.reward_names:
                raise invalid(
                    f"unknown reward {quoted(name)}; the spec's rewards are "
                    f"{list(self.reward_names)}"
                )
        for name in self.reward_names:
            field = f"rewards[{name!r}]"
            if name not in tensors:
                raise invalid(f"missing reward {name!r}")
            tensor = tensors[name]
            if tensor.dtype != sim_pb.DTYPE_FLOAT32:
                raise invalid(f"{field}: dtype {dtype_name(tensor.dtype)}, rewards are float32")
            if len(tensor.shape) != 1:
                raise invalid(f"{field}: shape {list(tensor.shape)}, a reward is a vector [k]")
            try:
                value = decode(tensor, field)
            except TensorError as err:
                raise invalid(str(err)) from None
            size = self._reward_sizes.setdefault(name, value.size)
            if value.size != size:
                raise invalid(f"{field}: {value.size} values, earlier steps sent {size}")
            if not all(math.isfinite(v) for v in value.tolist()):
                raise invalid(f"{field}: not a finite number")
            rewards[name] = value
        return rewards
