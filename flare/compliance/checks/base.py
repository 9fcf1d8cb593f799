"""What every area of checks is built from: the ``Check`` record and the shared harnesses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc
import numpy as np

from flare.bridge.codec import decode, encode
from flare.compliance.probe import (
    CheckFailed,
    CheckSkipped,
    Probe,
    Step,
    action_plan,
    decoded,
    valid_actions,
)
from flare.framework.env_spec import EnvSpec
from flare.simulator.v1 import SERVICE_NAME
from flare.simulator.v1 import simulator_pb2 as pb

CODE = grpc.StatusCode
SERVICE = SERVICE_NAME

Observations = dict[str, np.ndarray]
Send = Callable[[], object]
"""A bad request, ready to go: calling it sends it."""


P = TypeVar("P")


@dataclass(frozen=True)
class Check(Generic[P]):
    """One rule of a contract, checked through a probe (``Probe`` for a simulator's,
    ``LearnerProbe`` for a learner's Act contract)."""

    name: str
    rule: str
    run: Callable[[P], str]

    def __str__(self) -> str:  # (pytest ids)
        return self.name


def same_observations(x: Observations, y: Observations) -> bool:
    """The same names, and equal arrays under each."""
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


def same_step(x: Step, y: Step) -> bool:
    """The same observations, rewards (to float tolerance) and episode end."""
    return (
        same_observations(x.observations, y.observations)
        and x.rewards.keys() == y.rewards.keys()
        and all(np.allclose(x.rewards[k], y.rewards[k]) for k in x.rewards)
        and (x.game_over, x.time_out) == (y.game_over, y.time_out)
    )


def play(
    probe: Probe, session_id: str, plan: list[dict], seed: int | None = None
) -> list[Observations]:
    """Reset (with ``seed``, if any), then follow the plan (resetting at episode ends);
    every observation."""
    seen = [probe.reset(session_id, seed)]
    for actions in plan:
        step = probe.step(session_id, actions)
        seen.append(step.observations)
        if step.ended:
            seen.append(probe.reset(session_id))
    return seen


def bad_input(
    probe: Probe, code: grpc.StatusCode, what: str, make: Callable[[str, EnvSpec], Send]
) -> str:
    """Send one bad request, made by ``make`` for a fresh session of the spec; it must fail
    with exactly ``code``, and a witness session must step on, unharmed, after it."""
    witness, spec = probe.open(seed=11)
    session_id, _ = probe.open(seed=12)
    probe.reset(witness), probe.reset(session_id)
    plan = action_plan(spec, seed=11, length=2)
    probe.step(witness, plan[0])
    send = make(session_id, spec)
    with probe.expect_status(code, what):
        send()
    try:
        probe.step(witness, plan[1])
    except grpc.RpcError as err:
        raise CheckFailed(
            f"after {what}, another session failed to step: {err.code().name} {err.details()}"
        ) from None
    return f"{what}: {code.name}, and another session steps on"


def step_with(
    probe: Probe, session_id: str, tensors: dict[str, pb.Tensor], actrep: int = 0
) -> Send:
    """A Step of the session with these (encoded) actions, as they are, unchecked."""
    request = pb.StepRequest(session_id=session_id, actrep=actrep)
    for name, tensor in tensors.items():
        request.actions[name].CopyFrom(tensor)
    return lambda: probe.call(probe.stub.Step, request)


def valid_tensors(spec: EnvSpec) -> dict[str, pb.Tensor]:
    """One valid action of each name, encoded (the same ones every time)."""
    return {name: encode(a) for name, a in valid_actions(spec, np.random.default_rng(0)).items()}


def error_of(send: Send) -> grpc.RpcError | None:
    """The status a request fails with, or None when it succeeds (to look at the details)."""
    try:
        send()
    except grpc.RpcError as err:
        return err
    return None


def step_many_request(
    session_ids: Sequence[str],
    actions: Sequence[dict[str, np.ndarray]],
    actrep: int = 0,
    auto_reset: bool = False,
) -> pb.StepManyRequest:
    """A StepMany of the sessions, row i acting ``actions[i]`` (stacked by name)."""
    request = pb.StepManyRequest(session_ids=session_ids, actrep=actrep, auto_reset=auto_reset)
    for name in actions[0] if actions else ():
        request.actions[name].CopyFrom(encode(np.stack([a[name] for a in actions])))
    return request


def row_of(answer: pb.StepManyResponse, row: int) -> Step:
    """One row of a StepMany answer, as a Step."""
    observations = {k: v[row] for k, v in decoded(answer.observations).items()}
    rewards = {k: v[row] for k, v in decoded(answer.rewards).items()}
    game_over = decode(answer.game_over)[row]
    time_out = decode(answer.time_out)[row]
    return Step(observations, rewards, int(game_over), bool(time_out))


def twins(probe: Probe, seed: int) -> tuple[str, str, EnvSpec]:
    """Two sessions of one seed and config, reset and stepped a little alike: one witnesses
    what a refused call did to the other. CheckSkipped when they differ already (the
    server is not deterministic under a seed, so a twin could witness nothing)."""
    first, spec = probe.open(seed=seed)
    second, _ = probe.open(seed=seed)
    if not same_observations(probe.reset(first), probe.reset(second)):
        raise CheckSkipped(f"two sessions with seed {seed} differ at reset: no twin to compare")
    apart = twins_apart(probe, first, second, action_plan(spec, seed=seed, length=2))
    if apart is not None:
        raise CheckSkipped(f"two sessions with seed {seed} differ ({apart}): no twin to compare")
    return first, second, spec


def twins_apart(probe: Probe, first: str, second: str, plan: list[dict]) -> str | None:
    """Step two twins alike along the plan (resetting both at an end); where they part,
    or None when they stay together (so neither was moved behind the other's back)."""
    for t, actions in enumerate(plan):
        try:
            x = probe.step(first, actions)
        except grpc.RpcError as err:  # e.g. its episode was ended behind its back
            return f"step {t} of the first failed: {err.code().name} {err.details()}"
        y = probe.step(second, actions)
        if not same_step(x, y):
            return f"step {t} answers differ"
        if x.ended and not same_observations(probe.reset(first), probe.reset(second)):
            return f"the reset after step {t} differs"
    return None
