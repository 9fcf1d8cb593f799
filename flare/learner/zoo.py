"""Zoo classes built by name from a run config's options.

A model's sizes come from the environment's spec, never from the config: ``dims``,
``num_actions``, ``action_low`` / ``action_high``, ``image_shape``,
``instruction_length`` and ``vocabulary_size`` are read from the observation or action
the model names (``sensor_name``, ``image_name``, ``instruction_name``; ``action``).
Everything else a constructor takes may be given, and nothing else: an unknown option is
a ``ConfigError`` that lists the accepted ones.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from flare.framework.algorithm import Algorithm, Model
from flare.framework.env_spec import Continuous, EnvSpec, Language
from flare.learner.config import Component, ConfigError
from flare.learner.perception import perception_net

MODELS = {
    "SimpleModelAC": "flare.model_zoo.simple_models",
    "SimpleModelQ": "flare.model_zoo.q_models",
    "SimpleModelSR": "flare.model_zoo.successor_models",
    "SimpleRNNModelAC": "flare.model_zoo.rnn_models",
    "SimpleRNNModelQ": "flare.model_zoo.rnn_models",
    "SimpleModelDeterministic": "flare.model_zoo.continuous_models",
    "SimpleModelGaussian": "flare.model_zoo.continuous_models",
    "RewardPredictionModel": "flare.model_zoo.auxiliary_models",
    "ImageInstructionModelAC": "flare.model_zoo.image_language_models",
    "GFTModelAC": "flare.model_zoo.gft_models",
}
ALGORITHMS = {
    "SimpleAC": "flare.algorithm_zoo.simple_algorithms",
    "PPO": "flare.algorithm_zoo.ppo",
    "SimpleQ": "flare.algorithm_zoo.q_learning",
    "SimpleSARSA": "flare.algorithm_zoo.q_learning",
    "C51": "flare.algorithm_zoo.distributional_q",
    "QRDQN": "flare.algorithm_zoo.distributional_q",
    "IQN": "flare.algorithm_zoo.distributional_q",
    "OffPolicyAC": "flare.algorithm_zoo.off_policy_ac",
    "SuccessorRepresentationQ": "flare.algorithm_zoo.successor_representation",
    "DDPG": "flare.algorithm_zoo.ddpg",
    "GaussianAC": "flare.algorithm_zoo.gaussian_ac",
    "RewardPrediction": "flare.algorithm_zoo.reward_prediction",
}
HELPERS = {
    "OnlineHelper": "flare.framework.agent_helper",
    "ExpReplayHelper": "flare.framework.agent_helper",
    "RewardReplayHelper": "flare.framework.reward_replay",
}
# constructor arguments the spec fills in (the config may not)
FROM_SPEC = (
    "dims",
    "num_actions",
    "action_low",
    "action_high",
    "image_shape",
    "instruction_length",
    "vocabulary_size",
)


def zoo_class(kind: str, registry: Mapping[str, str], what: str, where: str) -> type:
    """The class named ``kind`` (a zoo name, or ``MODULE:CLASS`` for one of your own)."""
    if ":" in kind:
        module_name, _, name = kind.partition(":")
    elif kind in registry:
        module_name, name = registry[kind], kind
    else:
        raise ConfigError(
            f"{where}.type: no {what} {kind!r}; the zoo has {', '.join(sorted(registry))} "
            "(or give MODULE:CLASS)"
        )
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"{where}.type: cannot load {kind!r}: {err}") from None


def accepted_options(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword arguments ``cls`` takes, following ``**kwargs`` up the class tree."""
    accepted: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = list(inspect.signature(init).parameters.values())[1:]
        for p in parameters:
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                accepted.setdefault(p.name, p)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return accepted


def check_options(cls: type, options: Mapping[str, Any], where: str, reserved: set[str]) -> None:
    accepted = accepted_options(cls)
    for key in options:
        if key in reserved:
            raise ConfigError(f"{where}.{key}: set by the run, not by the config")
        if key not in accepted:
            takes = sorted(set(accepted) - reserved)
            raise ConfigError(
                f"{where}.{key}: {cls.__name__} takes no option {key!r}; it takes "
                f"{', '.join(takes) or 'none'}"
            )


def construct(cls: type, where: str, **kwargs: Any) -> Any:
    """``cls(**kwargs)``, a bad value reported as a ConfigError naming ``where``."""
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, KeyError) as err:
        raise ConfigError(f"{where}: {cls.__name__}: {err}") from None


# ----- models --------------------------------------------------------------------------------
def build_model(
    component: Component, spec: EnvSpec, shared: Mapping[str, Model], where: str
) -> Model:
    """The model ``component`` names, sized from ``spec``; ``perception`` is a table
    (``{mlp = [128, 128], activation = "relu"}``, or a ``cnn`` for images: see
    ``flare.learner.perception``) or the name of an earlier CT whose model's perception
    net this one shares."""
    cls = zoo_class(component.type, MODELS, "model", where)
    options = dict(component.options)
    perception = options.pop("perception", None)
    accepted = accepted_options(cls)
    check_options(cls, options, where, reserved={*FROM_SPEC, "perception_net"})
    kwargs: dict[str, Any] = dict(options)
    kwargs.update(_from_spec(accepted, options, spec, where))
    if "perception_net" in accepted:
        kwargs["perception_net"] = _perception(perception, kwargs.get("dims"), shared, where)
    elif perception is not None:
        raise ConfigError(f"{where}.perception: {cls.__name__} has no perception net")
    model = construct(cls, where, **kwargs)
    if not isinstance(model, Model):
        raise ConfigError(f"{where}.type: {component.type} is not a flare Model")
    return model


def _from_spec(
    accepted: Mapping[str, inspect.Parameter],
    options: Mapping[str, Any],
    spec: EnvSpec,
    where: str,
) -> dict[str, Any]:
    observations = {s.name: s for s in spec.observations}
    actions = {s.name: s for s in spec.actions}

    def observation(option: str) -> Any:
        name = options.get(option, accepted[option].default)
        if name not in observations:
            raise ConfigError(
                f"{where}: the model reads the observation {name!r} ({option}), but the "
                f"environment gives {', '.join(sorted(observations))}"
            )
        return observations[name]

    def action() -> Any:
        if "action" not in actions:
            raise ConfigError(
                f"{where}: the model acts on 'action', the environment's actions are "
                f"{', '.join(sorted(actions))}"
            )
        return actions["action"]

    kwargs: dict[str, Any] = {}
    if "dims" in accepted:
        kwargs["dims"] = observation("sensor_name").shape
    if "image_shape" in accepted:
        kwargs["image_shape"] = observation("image_name").shape
    if "instruction_length" in accepted or "vocabulary_size" in accepted:
        instruction = observation("instruction_name")
        if not isinstance(instruction.kind, Language):
            raise ConfigError(
                f"{where}: the observation {instruction.name!r} is not language "
                "(the model reads it as an instruction)"
            )
        kwargs["instruction_length"] = instruction.shape[0]
        kwargs["vocabulary_size"] = instruction.kind.vocabulary_size
    if "num_actions" in accepted:
        kwargs["num_actions"] = spec.action_dims()[action().name]
    if "action_low" in accepted:
        kind = action().kind
        if not isinstance(kind, Continuous):
            raise ConfigError(f"{where}: the model needs a continuous 'action'")
        kwargs["action_low"] = np.array(kind.low, dtype=np.float32)
        kwargs["action_high"] = np.array(kind.high, dtype=np.float32)
    return kwargs


def _perception(perception: Any, dims: Any, shared: Mapping[str, Model], where: str) -> nn.Module:
    if isinstance(perception, str):
        model = shared.get(perception)
        if model is None:
            raise ConfigError(
                f"{where}.perception: no earlier CT {perception!r} to share a perception net "
                f"with (earlier: {', '.join(shared) or 'none'})"
            )
        net = getattr(model, "perception_net", None)
        if not isinstance(net, nn.Module):
            raise ConfigError(
                f"{where}.perception: CT {perception!r}'s model has no perception_net"
            )
        return net
    if not isinstance(perception or {}, dict):
        raise ConfigError(f"{where}.perception must be a table or a CT name")
    return perception_net(dict(perception or {}), dims, f"{where}.perception")


# ----- algorithms ----------------------------------------------------------------------------
def build_algorithm(component: Component, model: Model, where: str) -> Algorithm:
    """The algorithm ``component`` names, on ``model``; ``optim`` is ``{type = "Adam",
    lr = 1e-3, ...}`` (any ``torch.optim`` class), ``exploration`` an ``EpsilonGreedy``
    table, ``noise`` a ``{type = "OrnsteinUhlenbeckNoise", ...}`` table."""
    cls = zoo_class(component.type, ALGORITHMS, "algorithm", where)
    options = dict(component.options)
    check_options(cls, options, where, reserved={"model"})
    if "optim" in options:
        options["optim"] = _optimizer(options["optim"], f"{where}.optim")
    if "exploration" in options:
        from flare.algorithm_zoo.value_based import EpsilonGreedy

        table = options["exploration"]
        if not isinstance(table, dict):
            raise ConfigError(f"{where}.exploration must be a table (start, end, decay_steps)")
        options["exploration"] = construct(EpsilonGreedy, f"{where}.exploration", **table)
    if isinstance(options.get("noise"), dict):
        options["noise"] = _noise(options["noise"], f"{where}.noise")
    algorithm = construct(cls, where, model=model, **options)
    if not isinstance(algorithm, Algorithm):
        raise ConfigError(f"{where}.type: {component.type} is not a flare Algorithm")
    return algorithm


def _optimizer(table: Any, where: str) -> tuple[type, dict[str, Any]]:
    if not isinstance(table, dict) or "type" not in table:
        raise ConfigError(f'{where} must be a table with a type, e.g. {{type = "Adam", lr = 1e-3}}')
    name = table["type"]
    cls = getattr(torch.optim, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ConfigError(f"{where}.type: torch.optim has no optimizer {name!r}")
    kwargs = {k: v for k, v in table.items() if k != "type"}
    check_options(cls, kwargs, where, reserved={"params"})
    return cls, kwargs


def _noise(table: dict[str, Any], where: str) -> Any:
    from flare.common import noises

    name = table.get("type", "")
    cls = getattr(noises, name, None) if isinstance(name, str) else None
    if not isinstance(cls, type):
        raise ConfigError(f"{where}.type: no noise {name!r} in flare.common.noises")
    kwargs = {k: v for k, v in table.items() if k != "type"}
    return construct(cls, where, **kwargs)


# ----- helpers -------------------------------------------------------------------------------
def helper_settings(component: Component, where: str) -> dict[str, Any]:
    """The CT settings of the helper ``component`` names (its class and its options)."""
    cls = zoo_class(component.type, HELPERS, "agent helper", where)
    check_options(cls, component.options, where, reserved={"name", "channel"})
    # each agent's helper is made when the run starts: one made now checks the values
    construct(cls, where, name="(check)", channel=None, **component.options)
    return {"agent_helper": cls, **component.options}
