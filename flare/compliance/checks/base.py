"""What every area of checks is built from: the ``Check`` record and the shared harnesses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
import numpy as np

from flare.bridge.codec import encode
from flare.compliance.probe import CheckFailed, Probe, action_plan, valid_actions
from flare.framework.env_spec import EnvSpec
from flare.simulator.v1 import SERVICE_NAME
from flare.simulator.v1 import simulator_pb2 as pb

CODE = grpc.StatusCode
SERVICE = SERVICE_NAME

Observations = dict[str, np.ndarray]
Send = Callable[[], object]
"""A bad request, ready to go: calling it sends it."""


@dataclass(frozen=True)
class Check:
    """One rule of the contract."""

    name: str
    rule: str
    run: Callable[[Probe], str]

    def __str__(self) -> str:  # (pytest ids)
        return self.name


def same_observations(x: Observations, y: Observations) -> bool:
    """The same names, and equal arrays under each."""
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


def play(probe: Probe, session_id: str, plan: list[dict]) -> list[Observations]:
    """Reset, then follow the plan (resetting at episode ends); every observation."""
    seen = [probe.reset(session_id)]
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


def step_with(probe: Probe, session_id: str, tensors: dict[str, pb.Tensor]) -> Send:
    """A Step of the session with these (encoded) actions, as they are, unchecked."""
    request = pb.StepRequest(session_id=session_id)
    for name, tensor in tensors.items():
        request.actions[name].CopyFrom(tensor)
    return lambda: probe.call(probe.stub.Step, request)


def valid_tensors(spec: EnvSpec) -> dict[str, pb.Tensor]:
    """One valid action of each name, encoded (the same ones every time)."""
    return {name: encode(a) for name, a in valid_actions(spec, np.random.default_rng(0)).items()}
