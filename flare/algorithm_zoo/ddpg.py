"""Deep Deterministic Policy Gradient (Lillicrap et al. 2016)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, cast

import numpy as np
import torch
import torch.nn as nn

from flare.algorithm_zoo.target_networks import soft_update
from flare.algorithm_zoo.value_based import td_cost
from flare.framework.algorithm import Algorithm, Model, OptimSetting, TensorDict
from flare.framework.outcomes import bootstrap_weight


class Noise(Protocol):
    """What DDPG needs of an exploration noise (``flare.common.noises`` provides two)."""

    def sample(self) -> np.ndarray: ...


ACTOR_MODEL_METHODS = ("actor", "critic", "actor_parameters", "critic_parameters")


class DeterministicActorCritic(Protocol):
    """What DDPG needs of its model besides ``Model``'s API (``SimpleModelDeterministic``
    has it all): the ``ACTOR_MODEL_METHODS`` and the action's bounds."""

    action_low: torch.Tensor
    action_high: torch.Tensor

    @property
    def action_half_range(self) -> torch.Tensor: ...

    def actor(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]: ...

    def critic(
        self, inputs: TensorDict, actions: TensorDict, states: TensorDict
    ) -> tuple[TensorDict, TensorDict]: ...

    def actor_parameters(self) -> Iterable[nn.Parameter]: ...

    def critic_parameters(self) -> Iterable[nn.Parameter]: ...


def _actor_critic(model: Model) -> DeterministicActorCritic:
    """``model`` seen as DDPG's actor-critic. ``DDPG.__init__`` checks its methods (the
    model's type, ``Model``, does not declare them; a model need not subclass one)."""
    return cast(DeterministicActorCritic, model)


@contextmanager
def frozen(parameters: Iterable[nn.Parameter]) -> Iterator[None]:
    """Parameters that take no gradient inside the block (gradients still flow through them
    to earlier layers), e.g. the critic while it scores the actor's actions."""
    params = [p for p in parameters if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class DDPG(Algorithm):
    """DDPG: a deterministic actor ``mu(s)`` and a critic ``Q(s, a)``, off-policy (use it
    with ``ExpReplayHelper``), with slow target copies of both.

    The critic regresses on ``r + gamma |alive'| Q'(s', mu'(s'))`` (no bootstrap after a
    game over, a full one through a time-out); the actor climbs ``Q(s, mu(s))``.

    **Two learning rates, one optimizer.** The optimizer gets two parameter groups, the
    actor's (``actor_lr``) and the critic's (``critic_lr``), so the base class's single
    ``optim`` keeps working: checkpoints, one ``optimizer_step`` per learn. The actor's cost
    is computed with the critic's parameters frozen, so the critic learns from its TD error
    only, and the actor from ``-Q`` only; both step together from the same batch (the paper
    steps the critic first, so its actor sees a critic one step newer). Every learn, the
    targets move ``tau`` of the way to the model.

    **Exploration.** ``predict`` adds ``noise.sample()``, scaled by the action's half-range,
    to ``mu(s)`` and clips the sum to the bounds. The noise must sample ``[rows, d]`` (or
    ``[d]`` for a single agent), one row per agent: give it ``size=(num_agents, d)``. Row
    ``i`` of every predict batch gets row ``i`` of the noise. With a CDP batch that holds
    every agent (a long ``batch_wait_s``), rows are agents in id order, so an
    Ornstein-Uhlenbeck noise is temporally correlated per agent, as in the paper. With
    partial batches an agent may land in another row from step to step; its noise is then
    still distributed as the process's but no longer correlated in time (nothing breaks;
    exploration is as with Gaussian noise). The algorithm does not see episode ends, so an
    OU process is never reset between episodes; it is mean-reverting, so it does not drift
    away. ``explore=False`` (or ``noise=None``) acts greedily.

    The model must provide ``actor(inputs, states)`` (actions inside the bounds),
    ``critic(inputs, actions, states)`` (a ``q_value`` of ``[B, 1]``), ``actor_parameters()``,
    ``critic_parameters()`` and the ``action_low``/``action_high`` bounds, as
    ``SimpleModelDeterministic`` does. Returns a ``priority`` (``|TD error|``) so it works
    with prioritized replay (whose importance weights scale both costs).

    Args:
        discount_factor: gamma.
        tau: how far the targets move towards the model each learn (soft update).
        actor_lr, critic_lr: the two parameter groups' learning rates.
        noise: exploration noise added in ``predict``; None acts greedily.
        cost: the critic's TD cost, ``mse`` (the paper's) or ``huber``.
        optim: the optimizer class and its other settings (Adam by default); ``lr`` comes
            from ``actor_lr`` and ``critic_lr``.
        grad_clip: clip the joint gradient norm of actor and critic.
    """

    def __init__(
        self,
        model: Model,
        gpu_id: int = -1,
        discount_factor: float = 0.99,
        tau: float = 0.005,
        actor_lr: float = 1e-4,
        critic_lr: float = 1e-3,
        noise: Noise | None = None,
        cost: str = "mse",
        optim: OptimSetting | None = None,
        grad_clip: float | None = None,
    ) -> None:
        missing = [m for m in ACTOR_MODEL_METHODS if not callable(getattr(model, m, None))]
        if missing:
            raise TypeError(f"DDPG needs a model with {missing} (see SimpleModelDeterministic)")
        specs = model.get_action_specs()
        if len(specs) != 1 or specs[0][0] != "action":
            raise ValueError(f"DDPG acts on one action named 'action', got {specs}")
        optim_class, optim_kwargs = optim if optim is not None else (torch.optim.Adam, {})
        if "lr" in optim_kwargs:
            raise ValueError("DDPG takes its learning rates from actor_lr and critic_lr")
        super().__init__(model, gpu_id=gpu_id, optim=None, grad_clip=grad_clip)
        if not 0.0 <= discount_factor <= 1.0:
            raise ValueError(f"discount_factor must be in [0, 1], got {discount_factor}")
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {tau}")
        if actor_lr <= 0 or critic_lr <= 0:
            raise ValueError(f"learning rates must be > 0, got {actor_lr} and {critic_lr}")
        td_cost(torch.zeros(1), cost)  # fail now on an unknown kind
        # The base class built one group over every parameter: rebuild it with two.
        self.optim = optim_class(self._parameter_groups(actor_lr, critic_lr), **optim_kwargs)
        self.discount_factor = discount_factor
        self.tau = tau
        self.noise = noise
        self.explore = True
        self.cost = cost
        self.target_model = copy.deepcopy(self.model).requires_grad_(False)
        self.steps = 0  # acting steps so far, over every agent
        self.num_learns = 0

    def _parameter_groups(self, actor_lr: float, critic_lr: float) -> list[dict[str, Any]]:
        """The actor's and the critic's parameters; together exactly the model's."""
        model = _actor_critic(self.model)
        actor = [p for p in model.actor_parameters() if p.requires_grad]
        critic = [p for p in model.critic_parameters() if p.requires_grad]
        mine = {id(p) for p in actor} | {id(p) for p in critic}
        trainable = {id(p) for p in self.model.parameters() if p.requires_grad}
        if mine != trainable or len(mine) != len(actor) + len(critic):
            raise ValueError("actor_parameters() and critic_parameters() must split the model")
        return [{"params": actor, "lr": actor_lr}, {"params": critic, "lr": critic_lr}]

    def predict(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        model = _actor_critic(self.model)
        actions, next_states = model.actor(inputs, states)
        action = actions["action"]
        if self.explore and self.noise is not None:
            action = action + model.action_half_range * self._noise_rows(action)
        low, high = model.action_low, model.action_high
        self.steps += action.size(0)
        return {"action": torch.clamp(action, low, high)}, next_states

    def _noise_rows(self, action: torch.Tensor) -> torch.Tensor:
        """One noise row per batch row (see the class doc)."""
        assert self.noise is not None  # predict calls this only with a noise
        sample = np.asarray(self.noise.sample(), dtype=np.float32)
        rows = sample.reshape(1, -1) if sample.ndim == 1 else sample
        batch, size = action.shape
        if rows.ndim != 2 or rows.shape[1] != size or rows.shape[0] < batch:
            raise ValueError(
                f"the noise samples {sample.shape}; a batch of {batch} actions of size {size} "
                f"needs [rows >= {batch}, {size}]: make it with size=(num_agents, {size})"
            )
        return torch.from_numpy(rows[:batch]).to(action.device)

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
        model = _actor_critic(self.model)
        q = model.critic(inputs, actions, states)[0]["q_value"]
        with torch.no_grad():
            target = self.critic_target(next_inputs, next_states, next_alive, rewards)
        td_error = target - q
        with frozen(model.critic_parameters()):
            greedy, _ = model.actor(inputs, states)
            actor_cost = -model.critic(inputs, greedy, states)[0]["q_value"]
        return {
            "cost": td_cost(td_error, self.cost),
            "actor_cost": actor_cost,
            "priority": td_error.detach().abs(),
        }

    def critic_target(
        self,
        next_inputs: TensorDict,
        next_states: TensorDict,
        next_alive: TensorDict,
        rewards: TensorDict,
    ) -> torch.Tensor:
        """``r + gamma |alive'| Q'(s', mu'(s'))``, ``[B, 1]``, from the target networks."""
        target_model = _actor_critic(self.target_model)
        next_actions, _ = target_model.actor(next_inputs, next_states)
        next_q = target_model.critic(next_inputs, next_actions, next_states)[0]["q_value"]
        reward = rewards["reward"]
        if next_q.shape != reward.shape:
            raise ValueError(f"q_value {tuple(next_q.shape)} != reward {tuple(reward.shape)}")
        return reward + self.discount_factor * bootstrap_weight(next_alive["alive"]) * next_q

    def update(self, **kwargs: Any) -> TensorDict:
        costs = super().update(**kwargs)
        self.num_learns += 1
        soft_update(self.target_model, self.model, self.tau)
        return costs

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(
            target_model=self.target_model.state_dict(),
            steps=self.steps,
            num_learns=self.num_learns,
        )
        noise_state = getattr(self.noise, "state_dict", None)
        if noise_state is not None:  # (a resumed run explores with the same numbers)
            state["noise"] = noise_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "target_model" in state:
            self.target_model.load_state_dict(state["target_model"])
        self.steps = int(state.get("steps", 0))
        self.num_learns = int(state.get("num_learns", 0))
        load_noise = getattr(self.noise, "load_state_dict", None)
        if "noise" in state and load_noise is not None:
            load_noise(state["noise"])
