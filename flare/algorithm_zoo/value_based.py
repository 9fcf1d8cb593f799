"""What every value-based algorithm shares: epsilon-greedy acting and a target network."""

from __future__ import annotations

import copy
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from flare.algorithm_zoo.target_networks import hard_update, soft_update
from flare.framework.algorithm import Algorithm, Model, OptimSetting, TensorDict
from flare.framework.outcomes import bootstrap_weight


@dataclass(frozen=True)
class EpsilonGreedy:
    """Epsilon decays linearly from ``start`` to ``end`` over ``decay_steps`` acting steps
    (counted over every agent), then stays at ``end``."""

    start: float = 1.0
    end: float = 0.05
    decay_steps: int = 10_000

    def __post_init__(self) -> None:
        if not (0 <= self.end <= 1 and 0 <= self.start <= 1):
            raise ValueError(f"epsilon must be in [0, 1], got {self.start} -> {self.end}")
        if self.decay_steps < 0:
            raise ValueError(f"decay_steps must be >= 0, got {self.decay_steps}")

    def epsilon(self, step: int) -> float:
        if self.decay_steps == 0 or step >= self.decay_steps:
            return self.end
        return self.start + (self.end - self.start) * step / self.decay_steps


def td_cost(td_error: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-sample cost of a TD error: ``huber`` (smooth L1, DQN's) or ``mse``."""
    if kind == "huber":
        return F.smooth_l1_loss(td_error, torch.zeros_like(td_error), reduction="none")
    if kind == "mse":
        return td_error.pow(2)
    raise ValueError(f"unknown TD cost {kind!r}; use 'huber' or 'mse'")


class ValueBasedAlgorithm(Algorithm):
    """Acts epsilon-greedily on ``q_values`` and keeps a target copy of the model.

    Subclasses define ``q_values`` (the expected return of each action) and ``learn``.

    Args:
        discount_factor: gamma.
        exploration: the epsilon schedule (``EpsilonGreedy()`` by default).
        target_update_interval: copy the model into the target every this many learns.
        target_tau: instead, move the target towards the model by ``tau`` every learn.
    """

    def __init__(
        self,
        model: Model,
        gpu_id: int = -1,
        discount_factor: float = 0.99,
        exploration: EpsilonGreedy | None = None,
        target_update_interval: int = 100,
        target_tau: float | None = None,
        optim: OptimSetting | None = None,
        grad_clip: float | None = None,
    ) -> None:
        super().__init__(model, gpu_id=gpu_id, optim=optim, grad_clip=grad_clip)
        if not 0.0 <= discount_factor <= 1.0:
            raise ValueError(f"discount_factor must be in [0, 1], got {discount_factor}")
        if target_update_interval < 1:
            raise ValueError(f"target_update_interval must be >= 1, got {target_update_interval}")
        if target_tau is not None and not 0 < target_tau <= 1:
            raise ValueError(f"target_tau must be in (0, 1], got {target_tau}")
        self.discount_factor = discount_factor
        self.exploration = exploration if exploration is not None else EpsilonGreedy()
        self.target_update_interval = target_update_interval
        self.target_tau = target_tau
        self.target_model = copy.deepcopy(self.model).requires_grad_(False)
        self.steps = 0  # acting steps so far, for the epsilon schedule
        self.num_learns = 0

    @abstractmethod
    def q_values(self, model: Model, inputs: TensorDict, states: TensorDict) -> torch.Tensor:
        """``[B, num_actions]`` expected returns under ``model`` (the model or its target)."""

    @property
    def epsilon(self) -> float:
        return self.exploration.epsilon(self.steps)

    def predict(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        q = self.q_values(self.model, inputs, states)
        greedy = q.argmax(dim=-1, keepdim=True)
        explore = torch.rand(greedy.shape, device=q.device) < self.epsilon
        random_actions = torch.randint_like(greedy, q.size(-1))
        self.steps += q.size(0)
        # a memory model's next states (the Q-values above already computed them once)
        next_states = self.model.next_states(inputs, states) if self.state_specs else states
        return {"action": torch.where(explore, random_actions, greedy)}, next_states

    def bootstrap(self, next_alive: TensorDict) -> torch.Tensor:
        """``gamma * |alive'|``: 0 after a game over, gamma after a time-out or a live step."""
        return self.discount_factor * bootstrap_weight(next_alive["alive"])

    def update(self, **kwargs: Any) -> TensorDict:
        costs = super().update(**kwargs)
        self.num_learns += 1
        if self.target_tau is not None:
            soft_update(self.target_model, self.model, self.target_tau)
        elif self.num_learns % self.target_update_interval == 0:
            hard_update(self.target_model, self.model)
        return costs

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(
            target_model=self.target_model.state_dict(),
            steps=self.steps,
            num_learns=self.num_learns,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "target_model" in state:
            self.target_model.load_state_dict(state["target_model"])
        self.steps = int(state.get("steps", 0))
        self.num_learns = int(state.get("num_learns", 0))
