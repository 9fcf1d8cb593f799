"""A run config mapped onto the Python API: the same Manager, CTs and agents a script
would build by hand.

Torch is seeded with the run's seed before the first model is built, and agent ``i``'s
env with ``1000 * seed + i``, as every FLARE experiment does; so a config and the
script it mirrors play the same games.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from flare.framework.agent import Agent
from flare.framework.algorithm import Model
from flare.framework.env_spec import EnvSpec
from flare.framework.manager import Manager
from flare.framework.settings import acts_on_learn_costs
from flare.learner.config import ConfigError, RunConfig
from flare.learner.environments import EnvSource
from flare.learner.zoo import build_algorithm, build_model, construct, helper_settings


def shaping(name: str, scale: float) -> Callable[[np.ndarray], np.ndarray] | None:
    """The reward shaping a config names, times ``scale`` (None: rewards as they come)."""
    base: Callable[[np.ndarray], np.ndarray] | None = {
        "none": None,
        "sign": np.sign,
        "clip": ClipReward(),
        "tenth": Divided(10.0),
        "hundredth": Divided(100.0),
    }[name]
    if scale == 1.0:
        return base
    return Scaled(scale, base)


class Divided:
    """``reward / divisor`` (picklable: agents may travel to a forkserver)."""

    def __init__(self, divisor: float) -> None:
        self.divisor = divisor

    def __call__(self, reward: np.ndarray) -> np.ndarray:
        return reward / self.divisor


class Scaled:
    """``scale * inner(reward)``."""

    def __init__(self, scale: float, inner: Callable[[np.ndarray], np.ndarray] | None = None):
        self.scale = scale
        self.inner = inner

    def __call__(self, reward: np.ndarray) -> np.ndarray:
        shaped = reward if self.inner is None else self.inner(reward)
        return shaped * self.scale


class ClipReward:
    """Rewards clipped to [-1, 1] (DQN's Atari shaping, keeping magnitudes below 1)."""

    def __call__(self, reward: np.ndarray) -> np.ndarray:
        return np.clip(reward, -1.0, 1.0)


def build_ct_settings(config: RunConfig, spec: EnvSpec) -> dict[str, dict[str, Any]]:
    """Every CT's settings, models sized from ``spec`` (torch seeded first)."""
    torch.manual_seed(config.seed)
    models: dict[str, Model] = {}
    settings: dict[str, dict[str, Any]] = {}
    for name, ct in config.cts.items():
        where = f"cts.{name}"
        model = build_model(ct.model, spec, models, f"{where}.model")
        models[name] = model
        settings[name] = dict(
            algorithm=build_algorithm(ct.algorithm, model, f"{where}.algorithm"),
            **helper_settings(ct.helper, f"{where}.helper"),
            num_agents=config.agents.count + config.act.streams,
            batch_wait_s=ct.batch_wait_s,
            learn_beside_acting=ct.learn_beside_acting,
        )
        helper = settings[name]["agent_helper"]
        if ct.learn_beside_acting and acts_on_learn_costs(helper):
            raise ConfigError(
                f"{where}.learn_beside_acting: {helper.__name__} acts on each batch's costs, "
                "which learning beside acting hands back one learn late"
            )
    return settings


def agent_class(kind: str) -> type[Agent]:
    if ":" in kind:
        module, _, name = kind.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"agents.kind: cannot load {kind!r}: {err}") from None
        if not (isinstance(cls, type) and issubclass(cls, Agent)):
            raise ConfigError(f"agents.kind: {kind} is not a flare Agent class")
        return cls
    from flare.agent_zoo.auxiliary_agents import RewardPredictionAgent
    from flare.agent_zoo.simple_rl_agents import SimpleRLAgent, SimpleRNNRLAgent

    kinds: dict[str, type[Agent]] = {
        "simple": SimpleRLAgent,
        "memory": SimpleRNNRLAgent,
        "reward_prediction": RewardPredictionAgent,
    }
    return kinds[kind]


# An Act agent plays as long as the run goes on (the run's act.games bounds them all).
UNBOUNDED_GAMES = 2**62


def build_agents(
    config: RunConfig, source: EnvSource | None, external: bool = False
) -> list[Agent]:
    """The run's own agents (each on ``source``'s env), or its Act agents (no env)."""
    agents_config = config.agents
    cls = agent_class(agents_config.kind)
    options = dict(agents_config.options)
    shaping_f = shaping(agents_config.reward_shaping, agents_config.reward_scale)
    if shaping_f is not None:
        options["reward_shaping_f"] = shaping_f
    count = config.act.streams if external else agents_config.count
    games = UNBOUNDED_GAMES if external else agents_config.games
    agents = []
    for i in range(count):
        agent = construct(cls, "agents", num_games=games, actrep=agents_config.actrep, **options)
        if source is not None and not external:
            agent.set_env(source.env_class, **source.kwargs_for(i))
        agents.append(agent)
    return agents


def build_manager(config: RunConfig, source: EnvSource) -> Manager:
    """The Manager of ``config``'s run with its agents added (not started)."""
    return build_run(config, source)[0]


def build_run(config: RunConfig, source: EnvSource) -> tuple[Manager, EnvSpec]:
    """The Manager of ``config``'s run with its agents added (not started), and the spec
    its models are sized from: the env of agent 0, built here once to read it."""
    probe = source.probe()
    try:
        spec = probe.spec()
    finally:
        probe.close()
    settings = build_ct_settings(config, spec)
    log = config.log
    manager = Manager(
        settings,
        dict(print_interval_s=log.print_interval_s, window=config.stop.window),
        torch_threads=config.torch_threads,
        agents_per_process=config.agents.per_process,
        start_method=config.agents.start_method,
    )
    manager.add_agents(build_agents(config, source))
    if config.act.streams:
        manager.add_external_agents(build_agents(config, None, external=True), config.act.games)
    return manager, spec
