"""Model (the network and its data specs) and Algorithm (the objective and the optimizer).

Switching Q-learning to SARSA changes the Algorithm only; the Model stays the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
import torch.nn as nn
from torch.distributions import Distribution

from flare.common.device import select_device
from flare.framework.memory import unroll_states
from flare.framework.specs import SpecList, find_duplicates, parse_specs

TensorDict = dict[str, torch.Tensor]
OptimSetting = tuple[type[torch.optim.Optimizer], dict[str, Any]]


class Model(nn.Module, ABC):
    """The network. It declares the named data it reads and writes and never trains itself."""

    @abstractmethod
    def get_input_specs(self) -> SpecList:
        """Observations the model reads, as ``[(name, dict(shape=[...], dtype=...)), ...]``."""

    def get_state_specs(self) -> SpecList:
        """Short-term memory carried across steps; none by default.

        A model with states returns the next states from ``policy``/``value`` and
        implements ``next_states``: FLARE zeroes them at each episode's start, stores them
        with every step, and recomputes them along each run when learning."""
        return []

    def next_states(self, inputs: TensorDict, states: TensorDict) -> TensorDict:
        """The states after one step, without the heads: how learning replays a run's
        memory. By default ``memory_step(memory_features(inputs), states)`` when the model
        splits its step that way, else ``value()``'s next states."""
        features = self.memory_features(inputs)
        if features is not None:
            return self.memory_step(features, states)
        return self.value(inputs, states)[1]

    def memory_features(self, inputs: TensorDict) -> torch.Tensor | None:
        """Optional speed-up for memory models: the part of a step that does not read the
        states (e.g. perception), as one ``[B, ...]`` tensor. Learning then computes it for
        every step of a batch at once and replays only ``memory_step`` step by step."""
        return None

    def memory_step(self, features: torch.Tensor, states: TensorDict) -> TensorDict:
        """The next states from ``memory_features``' output (with ``memory_features``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement memory_step()")

    def heads_from_states(
        self, inputs: TensorDict, next_states: TensorDict
    ) -> tuple[dict[str, Distribution], TensorDict] | None:
        """Optional speed-up for memory models whose heads read only the next states:
        ``policy_and_value``'s distributions and values from the next states learning has
        just replayed (``unroll_states``), so a minibatch's perception is not computed a
        second time, forward and backward. ``None`` (the default): call
        ``policy_and_value``."""
        return None

    @abstractmethod
    def get_action_specs(self) -> SpecList:
        """Actions the model outputs. A discrete action is ``dict(shape=[1], dtype="int64")``."""

    def get_reward_specs(self) -> SpecList:
        """A single scalar reward by default."""
        return [("reward", dict(shape=[1]))]

    def policy(
        self, inputs: TensorDict, states: TensorDict
    ) -> tuple[dict[str, Distribution], TensorDict]:
        """Action distributions by action name, and the next states."""
        raise NotImplementedError(f"{type(self).__name__} does not implement policy()")

    def value(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        """Value estimates by name (e.g. ``v_value``, ``q_value``), and the next states."""
        raise NotImplementedError(f"{type(self).__name__} does not implement value()")

    def policy_and_value(
        self, inputs: TensorDict, states: TensorDict
    ) -> tuple[dict[str, Distribution], TensorDict, TensorDict]:
        """Both at once: override it to share one pass of a common body."""
        dists, next_states = self.policy(inputs, states)
        values, _ = self.value(inputs, states)
        return dists, values, next_states


def check_duplicate_spec_names(model: Model) -> None:
    """Inputs, states, actions and rewards share one namespace: a name may appear once."""
    names = [
        name
        for specs in (
            model.get_input_specs(),
            model.get_state_specs(),
            model.get_action_specs(),
            model.get_reward_specs(),
        )
        for name, _ in specs
    ]
    duplicated = find_duplicates(names)
    if duplicated:
        raise ValueError(
            f"{type(model).__name__} declares these names in more than one spec: "
            f"{', '.join(duplicated)}"
        )


def weighted_mean(cost: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """The mean of a per-sample cost (``[n, ...]``), each sample scaled by ``weights[i]``."""
    if weights is None:
        return cost.mean()
    return (cost.reshape(weights.shape[0], -1) * weights).mean()


class Algorithm(ABC):
    """Owns a Model, its optimizer and its objective.

    Subclasses implement ``predict`` (acting) and ``learn`` (per-sample costs); ``update``
    turns those costs into one optimizer step, with optional gradient clipping.

    Args:
        model: the network.
        gpu_id: -1 for the CPU, ``k >= 0`` for CUDA device ``k``.
        optim: ``(optimizer class, keyword arguments)``; RMSprop with lr 1e-4 by default.
        grad_clip: clip the global gradient norm to this value; ``None`` disables clipping.
    """

    def __init__(
        self,
        model: Model,
        gpu_id: int = -1,
        optim: OptimSetting | None = None,
        grad_clip: float | None = None,
    ) -> None:
        if not isinstance(model, Model):
            raise TypeError(f"model must be a flare Model, got {type(model).__name__}")
        check_duplicate_spec_names(model)
        self.input_specs = parse_specs(model.get_input_specs(), "input")
        self.state_specs = parse_specs(model.get_state_specs(), "state")
        self.action_specs = parse_specs(model.get_action_specs(), "action")
        self.reward_specs = parse_specs(model.get_reward_specs(), "reward")
        self.behavior_specs = parse_specs(self.get_behavior_specs(), "behavior")
        clash = {s.name for s in self.behavior_specs} & {
            s.name for s in (*self.input_specs, *self.state_specs, *self.action_specs)
        }
        if clash:
            raise ValueError(
                f"{type(self).__name__}'s behavior specs reuse model names: {sorted(clash)}"
            )
        self.device = select_device(gpu_id)
        self.model = model.to(self.device)
        if grad_clip is not None and grad_clip <= 0:
            raise ValueError(f"grad_clip must be positive or None, got {grad_clip}")
        self.grad_clip = grad_clip
        optim_class, optim_kwargs = (
            optim if optim is not None else (torch.optim.RMSprop, {"lr": 1e-4})
        )
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optim = optim_class(params, **optim_kwargs) if params else None

    # The spec getters keep the original FLARE API.
    def get_input_specs(self) -> SpecList:
        return self.model.get_input_specs()

    def get_state_specs(self) -> SpecList:
        return self.model.get_state_specs()

    def get_action_specs(self) -> SpecList:
        return self.model.get_action_specs()

    def get_reward_specs(self) -> SpecList:
        return self.model.get_reward_specs()

    def get_behavior_specs(self) -> SpecList:
        """Data ``predict`` returns next to the actions for learning only, e.g. the behavior
        policy's log-probability. It is stored with the step, never sent to the env, and
        comes back to ``learn`` inside ``actions``. None by default."""
        return []

    @abstractmethod
    def predict(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        """Actions (by action name, plus any behavior data) and next states for a batch."""

    def learn(
        self,
        inputs: TensorDict,
        next_inputs: TensorDict,
        states: TensorDict,
        next_states: TensorDict,
        next_alive: TensorDict,
        actions: TensorDict,
        next_actions: TensorDict,
        rewards: TensorDict,
    ) -> TensorDict:
        """Per-sample costs (``[batch, 1]`` tensors) to minimise.

        ``next_alive["alive"]`` is 1 for a live next step, 0 after a game over and -1 after
        a time-out; bootstrap with ``abs(alive)`` so a time-out is never a terminal state.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement learn()")

    def update(
        self,
        *,
        sample_weights: torch.Tensor | None = None,
        sequence_lengths: list[int] | None = None,
        **batch: TensorDict,
    ) -> TensorDict:
        """One optimizer step on the weighted mean of every differentiable cost ``learn``
        returns.

        ``sample_weights`` (``[n, 1]``) scale each transition's costs (importance weights
        of prioritized replay); ``sequence_lengths`` split the batch into runs of one
        episode, for algorithms that override ``update`` to use multi-step targets. With a
        memory model, ``learn`` gets the states recomputed along each run from the run's
        first stored state (``with_memory``), so its costs backpropagate through time.
        """
        self._check_trainable()
        self.train_mode()
        costs = self.learn(**self.with_memory(batch, sequence_lengths))
        if not isinstance(costs, dict) or not costs:
            raise TypeError(f"{type(self).__name__}.learn() must return a non-empty dict of costs")
        trainable = [weighted_mean(c, sample_weights) for c in costs.values() if c.requires_grad]
        if not trainable:
            raise RuntimeError(f"{type(self).__name__}.learn() returned no differentiable cost")
        self.optimizer_step(torch.stack(trainable).sum())
        return {name: cost.detach() for name, cost in costs.items()}

    def with_memory(
        self, batch: dict[str, TensorDict], sequence_lengths: list[int] | None
    ) -> dict[str, TensorDict]:
        """The batch with ``states`` and ``next_states`` recomputed by the model along each
        run (a model without states: the batch as it is)."""
        if not self.state_specs:
            return batch
        size = len(batch["next_alive"]["alive"])
        states, next_states = unroll_states(
            self.model, batch["inputs"], batch["states"], sequence_lengths or [size]
        )
        return {**batch, "states": states, "next_states": next_states}

    def train_mode(self) -> None:
        """Put the model in training mode (a no-op when it already is)."""
        if not self.model.training:
            self.model.train()

    def _check_trainable(self) -> None:
        if self.optim is None:
            raise RuntimeError(f"{type(self).__name__} has no trainable parameters to update")

    def optimizer_step(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss``, clip the gradient norm if asked, step the optimizer."""
        assert self.optim is not None
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optim.step()

    def _rl_predict(
        self, behavior_model: Model, inputs: TensorDict, states: TensorDict
    ) -> tuple[TensorDict, TensorDict]:
        """Sample each action from the behavior policy; a discrete action gets shape [B, 1]."""
        distributions, next_states = behavior_model.policy(inputs, states)
        actions = {}
        for name, dist in distributions.items():
            action = dist.sample()
            if action.dim() == 1:
                action = action.unsqueeze(-1)
            actions[name] = action
        return actions, next_states

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume training: the model and the optimizer."""
        state: dict[str, Any] = {"model": self.model.state_dict()}
        if self.optim is not None:
            state["optim"] = self.optim.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.optim is not None and "optim" in state:
            self.optim.load_state_dict(state["optim"])
