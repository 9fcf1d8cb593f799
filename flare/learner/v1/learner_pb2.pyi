from flare.simulator.v1 import simulator_pb2 as _simulator_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ActProtocolVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACT_PROTOCOL_VERSION_UNSPECIFIED: _ClassVar[ActProtocolVersion]
    ACT_PROTOCOL_VERSION_1: _ClassVar[ActProtocolVersion]

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_STARTING: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_STOPPING: _ClassVar[RunState]
    RUN_STATE_FINISHED: _ClassVar[RunState]

class ProgressKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROGRESS_KIND_UNSPECIFIED: _ClassVar[ProgressKind]
    PROGRESS_KIND_PROGRESS: _ClassVar[ProgressKind]
    PROGRESS_KIND_CHECKPOINT: _ClassVar[ProgressKind]
    PROGRESS_KIND_FINISHED: _ClassVar[ProgressKind]

class SimulatorState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIMULATOR_STATE_UNSPECIFIED: _ClassVar[SimulatorState]
    SIMULATOR_STATE_LIVE: _ClassVar[SimulatorState]
    SIMULATOR_STATE_BACKING_OFF: _ClassVar[SimulatorState]
    SIMULATOR_STATE_DROPPED: _ClassVar[SimulatorState]
ACT_PROTOCOL_VERSION_UNSPECIFIED: ActProtocolVersion
ACT_PROTOCOL_VERSION_1: ActProtocolVersion
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_STARTING: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_STOPPING: RunState
RUN_STATE_FINISHED: RunState
PROGRESS_KIND_UNSPECIFIED: ProgressKind
PROGRESS_KIND_PROGRESS: ProgressKind
PROGRESS_KIND_CHECKPOINT: ProgressKind
PROGRESS_KIND_FINISHED: ProgressKind
SIMULATOR_STATE_UNSPECIFIED: SimulatorState
SIMULATOR_STATE_LIVE: SimulatorState
SIMULATOR_STATE_BACKING_OFF: SimulatorState
SIMULATOR_STATE_DROPPED: SimulatorState

class CheckpointInfo(_message.Message):
    __slots__ = ("path", "games", "policy_version", "wall_s")
    PATH_FIELD_NUMBER: _ClassVar[int]
    GAMES_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    WALL_S_FIELD_NUMBER: _ClassVar[int]
    path: str
    games: int
    policy_version: int
    wall_s: float
    def __init__(self, path: _Optional[str] = ..., games: _Optional[int] = ..., policy_version: _Optional[int] = ..., wall_s: _Optional[float] = ...) -> None: ...

class CTCosts(_message.Message):
    __slots__ = ("ct", "costs")
    class CostsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CT_FIELD_NUMBER: _ClassVar[int]
    COSTS_FIELD_NUMBER: _ClassVar[int]
    ct: str
    costs: _containers.ScalarMap[str, float]
    def __init__(self, ct: _Optional[str] = ..., costs: _Optional[_Mapping[str, float]] = ...) -> None: ...

class RunStatus(_message.Message):
    __slots__ = ("run_name", "state", "games", "games_budget", "env_steps", "window", "mean_return", "success_rate", "env_steps_per_s", "ct_costs", "policy_version", "agents_alive", "agents_total", "interrupted_games", "simulators", "uptime_s", "wall_s", "last_checkpoint", "stop_reason", "act_streams", "act_streams_max", "simulator_health", "simulators_live")
    RUN_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    GAMES_FIELD_NUMBER: _ClassVar[int]
    GAMES_BUDGET_FIELD_NUMBER: _ClassVar[int]
    ENV_STEPS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    MEAN_RETURN_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    ENV_STEPS_PER_S_FIELD_NUMBER: _ClassVar[int]
    CT_COSTS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    AGENTS_ALIVE_FIELD_NUMBER: _ClassVar[int]
    AGENTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTED_GAMES_FIELD_NUMBER: _ClassVar[int]
    SIMULATORS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    WALL_S_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    ACT_STREAMS_FIELD_NUMBER: _ClassVar[int]
    ACT_STREAMS_MAX_FIELD_NUMBER: _ClassVar[int]
    SIMULATOR_HEALTH_FIELD_NUMBER: _ClassVar[int]
    SIMULATORS_LIVE_FIELD_NUMBER: _ClassVar[int]
    run_name: str
    state: RunState
    games: int
    games_budget: int
    env_steps: int
    window: int
    mean_return: float
    success_rate: float
    env_steps_per_s: float
    ct_costs: _containers.RepeatedCompositeFieldContainer[CTCosts]
    policy_version: int
    agents_alive: int
    agents_total: int
    interrupted_games: int
    simulators: _containers.RepeatedScalarFieldContainer[str]
    uptime_s: float
    wall_s: float
    last_checkpoint: CheckpointInfo
    stop_reason: str
    act_streams: int
    act_streams_max: int
    simulator_health: _containers.RepeatedCompositeFieldContainer[SimulatorHealth]
    simulators_live: int
    def __init__(self, run_name: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., games: _Optional[int] = ..., games_budget: _Optional[int] = ..., env_steps: _Optional[int] = ..., window: _Optional[int] = ..., mean_return: _Optional[float] = ..., success_rate: _Optional[float] = ..., env_steps_per_s: _Optional[float] = ..., ct_costs: _Optional[_Iterable[_Union[CTCosts, _Mapping]]] = ..., policy_version: _Optional[int] = ..., agents_alive: _Optional[int] = ..., agents_total: _Optional[int] = ..., interrupted_games: _Optional[int] = ..., simulators: _Optional[_Iterable[str]] = ..., uptime_s: _Optional[float] = ..., wall_s: _Optional[float] = ..., last_checkpoint: _Optional[_Union[CheckpointInfo, _Mapping]] = ..., stop_reason: _Optional[str] = ..., act_streams: _Optional[int] = ..., act_streams_max: _Optional[int] = ..., simulator_health: _Optional[_Iterable[_Union[SimulatorHealth, _Mapping]]] = ..., simulators_live: _Optional[int] = ...) -> None: ...

class SimulatorHealth(_message.Message):
    __slots__ = ("address", "state", "failures")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    address: str
    state: SimulatorState
    failures: int
    def __init__(self, address: _Optional[str] = ..., state: _Optional[_Union[SimulatorState, str]] = ..., failures: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchProgressRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProgressEvent(_message.Message):
    __slots__ = ("kind", "status", "checkpoint")
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    kind: ProgressKind
    status: RunStatus
    checkpoint: CheckpointInfo
    def __init__(self, kind: _Optional[_Union[ProgressKind, str]] = ..., status: _Optional[_Union[RunStatus, _Mapping]] = ..., checkpoint: _Optional[_Union[CheckpointInfo, _Mapping]] = ...) -> None: ...

class SaveCheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckpointReply(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: CheckpointInfo
    def __init__(self, checkpoint: _Optional[_Union[CheckpointInfo, _Mapping]] = ...) -> None: ...

class StopRequest(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class StopReply(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: RunStatus
    def __init__(self, status: _Optional[_Union[RunStatus, _Mapping]] = ...) -> None: ...

class GetActSpecRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ActSpecReply(_message.Message):
    __slots__ = ("spec", "act_streams_max", "act_streams")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ACT_STREAMS_MAX_FIELD_NUMBER: _ClassVar[int]
    ACT_STREAMS_FIELD_NUMBER: _ClassVar[int]
    spec: _simulator_pb2.EnvSpec
    act_streams_max: int
    act_streams: int
    def __init__(self, spec: _Optional[_Union[_simulator_pb2.EnvSpec, _Mapping]] = ..., act_streams_max: _Optional[int] = ..., act_streams: _Optional[int] = ...) -> None: ...

class ActOpen(_message.Message):
    __slots__ = ("protocol_version", "spec", "config")
    class ConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    protocol_version: ActProtocolVersion
    spec: _simulator_pb2.EnvSpec
    config: _containers.ScalarMap[str, str]
    def __init__(self, protocol_version: _Optional[_Union[ActProtocolVersion, str]] = ..., spec: _Optional[_Union[_simulator_pb2.EnvSpec, _Mapping]] = ..., config: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ActStep(_message.Message):
    __slots__ = ("observations", "rewards", "game_over", "time_out", "new_episode")
    class ObservationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _simulator_pb2.Tensor
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_simulator_pb2.Tensor, _Mapping]] = ...) -> None: ...
    class RewardsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _simulator_pb2.Tensor
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_simulator_pb2.Tensor, _Mapping]] = ...) -> None: ...
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    GAME_OVER_FIELD_NUMBER: _ClassVar[int]
    TIME_OUT_FIELD_NUMBER: _ClassVar[int]
    NEW_EPISODE_FIELD_NUMBER: _ClassVar[int]
    observations: _containers.MessageMap[str, _simulator_pb2.Tensor]
    rewards: _containers.MessageMap[str, _simulator_pb2.Tensor]
    game_over: int
    time_out: bool
    new_episode: bool
    def __init__(self, observations: _Optional[_Mapping[str, _simulator_pb2.Tensor]] = ..., rewards: _Optional[_Mapping[str, _simulator_pb2.Tensor]] = ..., game_over: _Optional[int] = ..., time_out: _Optional[bool] = ..., new_episode: _Optional[bool] = ...) -> None: ...

class ActRequest(_message.Message):
    __slots__ = ("open", "step")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    open: ActOpen
    step: ActStep
    def __init__(self, open: _Optional[_Union[ActOpen, _Mapping]] = ..., step: _Optional[_Union[ActStep, _Mapping]] = ...) -> None: ...

class ActOpened(_message.Message):
    __slots__ = ("agent", "run_name", "protocol_version", "policy_version")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    RUN_NAME_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    agent: int
    run_name: str
    protocol_version: ActProtocolVersion
    policy_version: int
    def __init__(self, agent: _Optional[int] = ..., run_name: _Optional[str] = ..., protocol_version: _Optional[_Union[ActProtocolVersion, str]] = ..., policy_version: _Optional[int] = ...) -> None: ...

class ActActions(_message.Message):
    __slots__ = ("actions", "policy_version", "episode_over")
    class ActionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _simulator_pb2.Tensor
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_simulator_pb2.Tensor, _Mapping]] = ...) -> None: ...
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    EPISODE_OVER_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.MessageMap[str, _simulator_pb2.Tensor]
    policy_version: int
    episode_over: bool
    def __init__(self, actions: _Optional[_Mapping[str, _simulator_pb2.Tensor]] = ..., policy_version: _Optional[int] = ..., episode_over: _Optional[bool] = ...) -> None: ...

class ActReply(_message.Message):
    __slots__ = ("opened", "actions")
    OPENED_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    opened: ActOpened
    actions: ActActions
    def __init__(self, opened: _Optional[_Union[ActOpened, _Mapping]] = ..., actions: _Optional[_Union[ActActions, _Mapping]] = ...) -> None: ...
