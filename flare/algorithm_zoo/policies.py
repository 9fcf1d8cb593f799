"""Log-probabilities and entropies of a model's action distributions, as ``[batch, 1]``.

A model returns one distribution per action name. Discrete actions travel as int64
``[B, 1]``; continuous ones as ``[B, d]`` (their per-dimension log-probabilities add up).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import torch
from torch.distributions import Distribution

from flare.framework.algorithm import TensorDict

# the behavior data name under which policy-gradient algorithms store log mu(a|s)
BEHAVIOR_LOG_PROB = "behavior_log_prob"


def action_log_prob(dist: Distribution, action: torch.Tensor) -> torch.Tensor:
    """``log pi(a|s)`` of one action, ``[B, 1]``."""
    if action.dtype in (torch.int32, torch.int64):
        return dist.log_prob(action.squeeze(-1)).unsqueeze(-1)
    log_prob = dist.log_prob(action)
    return log_prob.reshape(action.shape[0], -1).sum(-1, keepdim=True)


def _add_up(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum(terms)``, one term per action. ``sum`` starts from the int 0, so its type says
    ``Tensor | int``; with at least one action (every model has one) it is a tensor."""
    return cast(torch.Tensor, sum(terms))


def joint_log_prob(dists: dict[str, Distribution], actions: TensorDict) -> torch.Tensor:
    """``log pi(a|s)`` of all the actions together (independent given the state), ``[B, 1]``."""
    return _add_up(action_log_prob(dist, actions[name]) for name, dist in dists.items())


def joint_entropy(dists: dict[str, Distribution], batch_size: int) -> torch.Tensor:
    """The entropy of all the action distributions together, ``[B, 1]``."""
    return _add_up(
        d.entropy().reshape(batch_size, -1).sum(-1, keepdim=True) for d in dists.values()
    )


def sample_actions(dists: dict[str, Distribution]) -> TensorDict:
    """One sample of each action; a discrete action gets shape ``[B, 1]``."""
    actions = {}
    for name, dist in dists.items():
        action = dist.sample()
        actions[name] = action.unsqueeze(-1) if action.dim() == 1 else action
    return actions
