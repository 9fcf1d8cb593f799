"""The two pieces of distributional RL that are easy to get subtly wrong.

``categorical_projection`` is C51's target (Bellemare et al. 2017): the Bellman-shifted
distribution put back onto the fixed atoms. ``quantile_huber_loss`` is QR-DQN's and
IQN's loss (Dabney et al. 2018).
"""

from __future__ import annotations

import torch


def categorical_projection(
    next_probs: torch.Tensor,
    atoms: torch.Tensor,
    rewards: torch.Tensor,
    discounts: torch.Tensor,
) -> torch.Tensor:
    """Project ``rewards + discounts * atoms`` (weighted by ``next_probs``) onto ``atoms``.

    Args:
        next_probs: ``[B, N]`` probabilities of the next state's return distribution.
        atoms: ``[N]`` evenly spaced support, ``v_min .. v_max``.
        rewards: ``[B]`` or ``[B, 1]``.
        discounts: ``[B]`` or ``[B, 1]``: the discount times the bootstrap weight
            (0 after a game over, so all mass lands on the reward).

    Returns ``[B, N]`` probabilities on ``atoms``; each row sums to the row of
    ``next_probs`` (1).
    """
    if next_probs.dim() != 2 or atoms.dim() != 1 or next_probs.size(1) != atoms.numel():
        raise ValueError(f"next_probs [B, N] and atoms [N], got {next_probs.shape}, {atoms.shape}")
    if atoms.numel() < 2:
        raise ValueError("C51 needs at least 2 atoms")
    v_min, v_max = atoms[0].item(), atoms[-1].item()
    delta = (v_max - v_min) / (atoms.numel() - 1)
    shifted = rewards.reshape(-1, 1) + discounts.reshape(-1, 1) * atoms.reshape(1, -1)
    position = (shifted.clamp(v_min, v_max) - v_min) / delta  # in 0 .. N-1
    lower = position.floor().long()
    upper = position.ceil().long()
    # when the position is an atom (lower == upper) all of its mass goes there
    lower_share = torch.where(upper == lower, torch.ones_like(position), upper - position)
    upper_share = position - lower
    projected = torch.zeros_like(next_probs)
    projected.scatter_add_(1, lower, next_probs * lower_share)
    projected.scatter_add_(1, upper, next_probs * upper_share)
    return projected


def quantile_huber_loss(
    quantiles: torch.Tensor, taus: torch.Tensor, targets: torch.Tensor, kappa: float = 1.0
) -> torch.Tensor:
    """Per-sample quantile regression loss with a Huber kernel.

    Args:
        quantiles: ``[B, N]`` predicted values at quantile fractions ``taus``.
        taus: ``[N]`` (QR-DQN's fixed midpoints) or ``[B, N]`` (IQN's sampled ones).
        targets: ``[B, M]`` target samples (no gradient flows into them).
        kappa: the Huber threshold; 0 gives the plain quantile (pinball) loss.

    Returns ``[B, 1]``: for each sample, the sum over the N predictions of the mean over
    the M targets of ``|tau - 1{u < 0}| * huber_kappa(u) / kappa`` with
    ``u = target - quantile`` (``|tau - 1{u < 0}| * |u|`` when kappa is 0).
    """
    if quantiles.dim() != 2 or targets.dim() != 2 or quantiles.size(0) != targets.size(0):
        raise ValueError(
            f"quantiles [B, N] and targets [B, M], got {quantiles.shape}, {targets.shape}"
        )
    taus = taus.expand_as(quantiles)
    u = targets.detach().unsqueeze(1) - quantiles.unsqueeze(2)  # [B, N, M]
    if kappa > 0:
        absolute = u.abs()
        huber = torch.where(absolute <= kappa, 0.5 * u.pow(2), kappa * (absolute - 0.5 * kappa))
        kernel = huber / kappa
    else:
        kernel = u.abs()
    weight = (taus.unsqueeze(2) - (u.detach() < 0).to(u.dtype)).abs()
    return (weight * kernel).mean(dim=2).sum(dim=1, keepdim=True)
