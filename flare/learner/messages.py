"""The learner's data classes and the flare.learner.v1 messages, both ways.

One module, so the servicer (data class -> proto) and the client (proto -> data class)
cannot disagree on what a field means.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import cast

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from flare.framework.reports import ServerHealth
from flare.framework.run_events import CheckpointInfo
from flare.learner.status import ProgressEvent, ProgressKind, RunState, RunStatus
from flare.learner.v1 import learner_pb2 as pb

_STATE_PREFIX = "RUN_STATE_"
_KIND_PREFIX = "PROGRESS_KIND_"


# ----- checkpoints ---------------------------------------------------------------------------
def checkpoint_to_proto(info: CheckpointInfo) -> pb.CheckpointInfo:
    return pb.CheckpointInfo(
        path=str(info.path),
        games=info.games,
        policy_version=info.policy_version,
        wall_s=info.wall_s,
    )


def checkpoint_from_proto(message: pb.CheckpointInfo) -> CheckpointInfo:
    return CheckpointInfo(
        path=Path(message.path),
        games=message.games,
        policy_version=message.policy_version,
        wall_s=message.wall_s,
    )


# ----- enums: the proto's names are the data classes' with a prefix -------------------------
def state_to_proto(state: RunState) -> pb.RunState:
    return cast(pb.RunState, pb.RunState.Value(_STATE_PREFIX + state.name))


def state_from_proto(value: int) -> RunState:
    return RunState[_enum_name(pb.RunState, value, _STATE_PREFIX, "state")]


def kind_to_proto(kind: ProgressKind) -> pb.ProgressKind:
    return cast(pb.ProgressKind, pb.ProgressKind.Value(_KIND_PREFIX + kind.name))


def kind_from_proto(value: int) -> ProgressKind:
    return ProgressKind[_enum_name(pb.ProgressKind, value, _KIND_PREFIX, "kind")]


def _enum_name(enum: EnumTypeWrapper, value: int, prefix: str, field: str) -> str:
    """The data class member's name of a wire enum value; UNSPECIFIED and values this
    client does not know are a ``ValueError`` (a learner never sends them)."""
    try:
        name = enum.Name(value)
    except ValueError:
        name = ""
    if not name.startswith(prefix) or name == f"{prefix}UNSPECIFIED":
        raise ValueError(f"the learner sent {field} {value}, which this client does not know")
    return name.removeprefix(prefix)


# ----- the status ----------------------------------------------------------------------------
_SIMULATOR_STATES = {
    "live": pb.SIMULATOR_STATE_LIVE,
    "backing off": pb.SIMULATOR_STATE_BACKING_OFF,
    "dropped": pb.SIMULATOR_STATE_DROPPED,
}
_SIMULATOR_STATE_NAMES = {number: name for name, number in _SIMULATOR_STATES.items()}


def status_to_proto(status: RunStatus) -> pb.RunStatus:
    """NaN means (no game yet) travel as unset fields."""
    message = pb.RunStatus(
        run_name=status.run_name,
        state=state_to_proto(status.state),
        games=status.games,
        games_budget=status.games_budget,
        env_steps=status.env_steps,
        window=status.window,
        env_steps_per_s=status.env_steps_per_s,
        ct_costs=[pb.CTCosts(ct=ct, costs=costs) for ct, costs in sorted(status.ct_costs.items())],
        policy_version=status.policy_version,
        agents_alive=status.agents_alive,
        agents_total=status.agents_total,
        interrupted_games=status.interrupted_games,
        simulators=status.simulators,
        uptime_s=status.uptime_s,
        wall_s=status.wall_s,
        stop_reason=status.stop_reason,
        act_streams=status.act_streams,
        act_streams_max=status.act_streams_max,
        simulator_health=[
            pb.SimulatorHealth(
                address=h.address, state=_SIMULATOR_STATES[h.state], failures=h.failures
            )
            for h in status.simulator_health
        ],
        simulators_live=status.simulators_live,
    )
    if not math.isnan(status.mean_return):
        message.mean_return = status.mean_return
    if not math.isnan(status.success_rate):
        message.success_rate = status.success_rate
    if status.last_checkpoint is not None:
        message.last_checkpoint.CopyFrom(checkpoint_to_proto(status.last_checkpoint))
    return message


def status_from_proto(message: pb.RunStatus) -> RunStatus:
    """Unset means come back as NaN, as the tracker has them."""
    return RunStatus(
        run_name=message.run_name,
        state=state_from_proto(message.state),
        games=message.games,
        games_budget=message.games_budget,
        env_steps=message.env_steps,
        window=message.window,
        mean_return=message.mean_return if message.HasField("mean_return") else math.nan,
        success_rate=message.success_rate if message.HasField("success_rate") else math.nan,
        env_steps_per_s=message.env_steps_per_s,
        policy_version=message.policy_version,
        agents_alive=message.agents_alive,
        agents_total=message.agents_total,
        interrupted_games=message.interrupted_games,
        uptime_s=message.uptime_s,
        wall_s=message.wall_s,
        ct_costs={entry.ct: dict(entry.costs) for entry in message.ct_costs},
        simulators=tuple(message.simulators),
        simulator_health=tuple(
            ServerHealth(h.address, _SIMULATOR_STATE_NAMES.get(h.state, "live"), h.failures)
            for h in message.simulator_health
        ),
        simulators_live=message.simulators_live,
        last_checkpoint=(
            checkpoint_from_proto(message.last_checkpoint)
            if message.HasField("last_checkpoint")
            else None
        ),
        stop_reason=message.stop_reason,
        act_streams=message.act_streams,
        act_streams_max=message.act_streams_max,
    )


# ----- progress events -----------------------------------------------------------------------
def event_to_proto(event: ProgressEvent) -> pb.ProgressEvent:
    message = pb.ProgressEvent(kind=kind_to_proto(event.kind), status=status_to_proto(event.status))
    if event.checkpoint is not None:
        message.checkpoint.CopyFrom(checkpoint_to_proto(event.checkpoint))
    return message


def event_from_proto(message: pb.ProgressEvent) -> ProgressEvent:
    return ProgressEvent(
        kind=kind_from_proto(message.kind),
        status=status_from_proto(message.status),
        checkpoint=(
            checkpoint_from_proto(message.checkpoint) if message.HasField("checkpoint") else None
        ),
    )
