"""Checks that the spec is well formed and that what the server sends matches it."""

from __future__ import annotations

import math

import numpy as np

from flare.bridge.specs import spec_from_proto
from flare.compliance.probe import CheckFailed, Probe, valid_actions
from flare.framework.env_spec import ArraySpec, Continuous, Discrete, EnvSpec, Language
from flare.simulator.v1 import simulator_pb2 as pb


def spec_well_formed(probe: Probe) -> str:
    session_id, spec = probe.open()
    problems = _spec_problems(spec)
    if problems:
        raise CheckFailed("; ".join(problems))
    again = spec_from_proto(
        probe.call(probe.stub.GetSpec, pb.GetSpecRequest(session_id=session_id)).spec
    )
    if again != spec:
        raise CheckFailed("GetSpec returns another spec than OpenSession")
    return (
        f"observations {[s.name for s in spec.observations]}, "
        f"actions {[s.name for s in spec.actions]}, rewards {list(spec.reward_names)}"
    )


def _spec_problems(spec: EnvSpec) -> list[str]:
    problems = []
    for group, arrays in (("observation", spec.observations), ("action", spec.actions)):
        if not arrays:
            problems.append(f"no {group}s")
        names = [a.name for a in arrays]
        if len(set(names)) != len(names) or not all(names):
            problems.append(f"{group} names must be unique and non-empty: {names}")
        problems.extend(p for a in arrays for p in _array_problems(group, a))
    if not spec.reward_names or len(set(spec.reward_names)) != len(spec.reward_names):
        problems.append(f"reward names must be unique and non-empty: {spec.reward_names}")
    if spec.max_episode_steps < 0:
        problems.append(f"max_episode_steps {spec.max_episode_steps} < 0")
    return problems


def _array_problems(group: str, spec: ArraySpec) -> list[str]:
    where = f"{group} {spec.name!r}"
    problems = (
        [f"{where}: negative dimension in {spec.shape}"] if min(spec.shape, default=0) < 0 else []
    )
    kind = spec.kind
    integral = spec.dtype.kind in "iu"
    if isinstance(kind, Discrete) and (kind.num_values < 1 or not integral):
        problems.append(f"{where}: discrete needs an integer dtype and >= 1 values")
    if isinstance(kind, Language) and (kind.vocabulary_size < 1 or not integral):
        problems.append(f"{where}: language needs an integer dtype and a vocabulary >= 1")
    if isinstance(kind, Continuous):
        size = math.prod(spec.shape)
        if len(kind.low) != size or len(kind.high) != size:
            problems.append(f"{where}: bounds need {size} values each")
        elif any(lo > hi for lo, hi in zip(kind.low, kind.high, strict=True)):
            problems.append(f"{where}: a low bound is above its high bound")
    return problems


def observations_match_spec(probe: Probe) -> str:
    session_id, spec = probe.open(seed=0)
    _check_observations("reset", probe.reset(session_id), spec)
    step = probe.step(session_id, valid_actions(spec, np.random.default_rng(0)))
    _check_observations("step", step.observations, spec)
    if set(step.rewards) != set(spec.reward_names):
        raise CheckFailed(f"step rewards {sorted(step.rewards)}, spec {list(spec.reward_names)}")
    for name, reward in step.rewards.items():
        if reward.dtype != np.float32 or reward.ndim != 1:
            raise CheckFailed(f"reward {name!r} is {reward.dtype} {reward.shape}, not float32 [n]")
    if step.game_over not in (-1, 0, 1):
        raise CheckFailed(f"game_over {step.game_over} is not -1, 0 or 1")
    return "reset and step answer every name of the spec with its dtype and shape"


def _check_observations(when: str, observations: dict[str, np.ndarray], spec: EnvSpec) -> None:
    wanted = {s.name: s for s in spec.observations}
    if set(observations) != set(wanted):
        raise CheckFailed(f"{when}: observations {sorted(observations)}, spec {sorted(wanted)}")
    for name, array in observations.items():
        expected = wanted[name]
        if array.dtype != expected.dtype or array.shape != expected.shape:
            raise CheckFailed(
                f"{when}: observation {name!r} is {array.dtype} {array.shape}, "
                f"the spec says {expected.dtype} {expected.shape}"
            )
