"""Map FLARE's ``gpu_id`` convention to a torch device."""

from __future__ import annotations

import torch


def select_device(gpu_id: int) -> torch.device:
    """``-1`` is the CPU; ``k >= 0`` is CUDA device ``k``, which must exist."""
    if not isinstance(gpu_id, int) or isinstance(gpu_id, bool):
        raise TypeError(f"gpu_id must be an int (-1 for the CPU), got {gpu_id!r}")
    if gpu_id == -1:
        return torch.device("cpu")
    if gpu_id < -1:
        raise ValueError(f"gpu_id must be -1 (CPU) or a CUDA device index >= 0, got {gpu_id}")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"gpu_id={gpu_id} asks for CUDA device {gpu_id}, but CUDA is not available "
            f"(torch {torch.__version__}); use gpu_id=-1 to run on the CPU"
        )
    count = torch.cuda.device_count()
    if gpu_id >= count:
        raise RuntimeError(
            f"gpu_id={gpu_id} asks for CUDA device {gpu_id}, but only {count} device(s) exist "
            f"(valid ids: 0..{count - 1}, or -1 for the CPU)"
        )
    return torch.device(f"cuda:{gpu_id}")
