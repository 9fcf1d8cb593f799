"""Return targets over one stretch of an episode: n-step returns and GAE.

Every function takes per-step tensors of length T (time first, any trailing batch
dimensions), in FLARE's convention for what follows step t:

- ``rewards[t]``: the reward of step t;
- ``next_values[t]``: the value estimate of the state step t led to;
- ``next_alive[t]``: 1 the episode goes on, 0 it ended in a game over (no
  bootstrap), -1 it timed out (bootstrap from ``next_values[t]``, then stop).

The data may end before the episode does (the last step is alive): the return then
bootstraps from the last ``next_values``.
"""

from __future__ import annotations

import numpy as np
import torch

from flare.framework.outcomes import bootstrap_weight, continues


def _check(rewards: torch.Tensor, next_values: torch.Tensor, next_alive: torch.Tensor) -> None:
    if not rewards.shape == next_values.shape == next_alive.shape or rewards.dim() == 0:
        raise ValueError(
            "rewards, next_values and next_alive must share one shape [T, ...], got "
            f"{tuple(rewards.shape)}, {tuple(next_values.shape)}, {tuple(next_alive.shape)}"
        )


def n_step_returns(
    rewards: torch.Tensor,
    next_values: torch.Tensor,
    next_alive: torch.Tensor,
    discount: float,
    n: int,
) -> torch.Tensor:
    """``G_t = r_t + d r_{t+1} + ... + d^(k-1) r_{t+k-1} + d^k V(s_{t+k})``, with k = n or
    fewer steps when the episode (or the data) ends first; no bootstrap after a game over."""
    _check(rewards, next_values, next_alive)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    length = rewards.size(0)
    returns = torch.empty_like(rewards)
    # bootstrap weight of each step's next value if the return stops there: |alive|
    # (0 after a game over, 1 after a time-out or where the n steps or the data run out)
    stops_weight = bootstrap_weight(next_alive)
    goes_on = continues(next_alive, rewards.dtype)
    for t in range(length):
        total = torch.zeros_like(rewards[t])
        scale = torch.ones_like(rewards[t])  # d^k, zeroed once the episode has ended
        for j in range(t, min(t + n, length)):
            total = total + scale * rewards[j]
            last = j == min(t + n, length) - 1
            # a return stops at j if the episode ends there or the n steps / data run out
            stop_here = (1 - goes_on[j]) if not last else torch.ones_like(goes_on[j])
            total = total + scale * discount * stop_here * stops_weight[j] * next_values[j]
            scale = scale * discount * (1 - stop_here)
        returns[t] = total
    return returns


def generalized_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    next_alive: torch.Tensor,
    discount: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE (Schulman et al. 2016): advantages and the value targets ``advantages + values``.

    ``delta_t = r_t + d |alive_t| V(s_{t+1}) - V(s_t)``;
    ``A_t = delta_t + d lam A_{t+1}`` while the episode goes on (the trace stops at any
    episode end, game over or time-out).
    """
    _check(rewards, next_values, next_alive)
    if values.shape != rewards.shape:
        raise ValueError(f"values {tuple(values.shape)} != rewards {tuple(rewards.shape)}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    with torch.no_grad():  # targets: no gradient flows through them
        deltas = rewards + discount * bootstrap_weight(next_alive) * next_values - values
        decay = discount * lam * continues(next_alive, rewards.dtype)
        # the backward recursion runs in numpy: a loop of tensor ops costs ~10x more
        delta_np = deltas.cpu().double().numpy()
        decay_np = decay.cpu().double().numpy()
        advantages_np = np.empty_like(delta_np)
        running = np.zeros_like(delta_np[0])
        for t in range(len(delta_np) - 1, -1, -1):
            running = delta_np[t] + decay_np[t] * running
            advantages_np[t] = running
        advantages = torch.from_numpy(advantages_np).to(rewards.dtype).to(rewards.device)
        return advantages, advantages + values
