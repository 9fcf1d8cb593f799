"""Typed forms of the Manager's ``ct_settings`` and ``log_settings`` dicts."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from flare.framework.agent_helper import AgentHelper
from flare.framework.algorithm import Algorithm


def acts_on_learn_costs(helper: type[AgentHelper]) -> bool:
    """Whether a helper uses each learn's per-sample costs (prioritized replay's
    priorities), which learning beside acting hands back one learn late."""
    return helper.learned is not AgentHelper.learned


@dataclass
class CTSettings:
    """One ComputationTask: its algorithm, the helper each agent gets, and batching.

    Keys of the settings dict other than these fields are passed to the helper's
    constructor (e.g. ``sample_interval``, ``buffer_capacity``). ``learn_beside_acting``
    runs its updates in a thread of their own while the agents act on the weights one
    update old (``flare.framework.background_learning``).
    """

    algorithm: Algorithm
    agent_helper: type[AgentHelper]
    num_agents: int | None = None
    batch_wait_s: float = 0.01
    learn_beside_acting: bool = False
    helper_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, settings: dict[str, Any]) -> CTSettings:
        if not isinstance(settings, dict):
            raise TypeError(f"ct_settings[{name!r}] must be a dict, got {type(settings).__name__}")
        own = {f.name for f in fields(cls)} - {"helper_kwargs"}
        missing = [k for k in ("algorithm", "agent_helper") if k not in settings]
        if missing:
            raise ValueError(f"ct_settings[{name!r}] lacks {', '.join(missing)}")
        helper = settings["agent_helper"]
        if not (isinstance(helper, type) and issubclass(helper, AgentHelper)):
            raise TypeError(
                f"ct_settings[{name!r}]['agent_helper'] must be an AgentHelper class, "
                f"got {helper!r}"
            )
        if not isinstance(settings["algorithm"], Algorithm):
            raise TypeError(
                f"ct_settings[{name!r}]['algorithm'] must be a flare Algorithm, "
                f"got {type(settings['algorithm']).__name__}"
            )
        helper_kwargs = {k: v for k, v in settings.items() if k not in own}
        parameters = {
            p.name: p
            for p in inspect.signature(helper.__init__).parameters.values()
            if p.name not in ("self", "name", "channel")
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        unknown = sorted(set(helper_kwargs) - set(parameters))
        if unknown:
            raise ValueError(
                f"ct_settings[{name!r}]: unknown setting(s) {unknown}; {helper.__name__} accepts "
                f"{sorted(parameters)} and the CT accepts {sorted(own)}"
            )
        required = sorted(
            n for n, p in parameters.items() if p.default is p.empty and n not in helper_kwargs
        )
        if required:
            raise ValueError(
                f"ct_settings[{name!r}]: {helper.__name__} needs {', '.join(required)}"
            )
        num_agents = settings.get("num_agents")
        if num_agents is not None and num_agents < 1:
            raise ValueError(f"ct_settings[{name!r}]['num_agents'] must be >= 1, got {num_agents}")
        beside = settings.get("learn_beside_acting", False)
        if not isinstance(beside, bool):
            raise TypeError(f"ct_settings[{name!r}]['learn_beside_acting'] must be a bool")
        if beside and acts_on_learn_costs(helper):
            raise ValueError(
                f"ct_settings[{name!r}]: {helper.__name__} acts on each batch's costs "
                "(learned), which learning beside acting hands back one learn late; "
                "set learn_beside_acting = false for it"
            )
        return cls(
            algorithm=settings["algorithm"],
            agent_helper=helper,
            num_agents=num_agents,
            batch_wait_s=float(settings.get("batch_wait_s", 0.01)),
            learn_beside_acting=beside,
            helper_kwargs=helper_kwargs,
        )


@dataclass
class LogSettings:
    """Where and how often the Manager reports and checkpoints.

    Attributes:
        log_dir: append every finished game to ``log_dir/games.csv``.
        print_interval_s: seconds between progress lines; 0 turns them off.
        window: games averaged for the progress line's mean return.
        model_dir: save each CT's algorithm to ``model_dir/<ct name>.pt``.
        model_save_interval: also save every this many games (0: only when the run ends).
        load_model: before training, load from ``model_dir`` (True) or from this directory.
        stop_timeout_s: how long agents get to finish their step when the run stops.
    """

    log_dir: str | None = None
    print_interval_s: float = 10.0
    window: int = 100
    model_dir: str | None = None
    model_save_interval: int = 0
    load_model: bool | str = False
    stop_timeout_s: float = 5.0

    @classmethod
    def from_dict(cls, settings: dict[str, Any] | None) -> LogSettings:
        settings = dict(settings or {})
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - valid)
        if unknown:
            raise ValueError(f"log_settings: unknown key(s) {unknown}; valid keys: {sorted(valid)}")
        parsed = cls(**settings)
        if parsed.window < 1:
            raise ValueError(f"log_settings['window'] must be >= 1, got {parsed.window}")
        if parsed.model_save_interval < 0:
            raise ValueError("log_settings['model_save_interval'] must be >= 0")
        if parsed.model_save_interval and not parsed.model_dir:
            raise ValueError("log_settings['model_save_interval'] needs a 'model_dir'")
        if parsed.load_model is True and not parsed.model_dir:
            raise ValueError("log_settings['load_model']=True needs a 'model_dir' to load from")
        return parsed

    def load_dir(self) -> Path | None:
        if self.load_model is False or self.load_model is None:
            return None
        if self.load_model is True:
            return Path(self.model_dir) if self.model_dir else None
        return Path(self.load_model)
