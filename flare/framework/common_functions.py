"""Small network pieces shared by models and algorithms."""

from __future__ import annotations

import torch
import torch.nn as nn


class Flatten(nn.Module):
    """Flatten everything but the batch axis (e.g. a CNN's feature cube into a vector)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.size(0), -1)


def idx_select(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Pick ``values[b, index[b]]`` for each row: ``[B, N]`` and ``[B, 1]`` give ``[B, 1]``."""
    if values.dim() != 2 or index.shape != (values.size(0), 1):
        raise ValueError(f"idx_select expects [B, N] and [B, 1], got {values.shape}, {index.shape}")
    return values.gather(1, index.long())
