"""A typed description of an Env's observations and actions (what the wire spec carries)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flare.framework.specs import ArraySpec, Continuous, Discrete, Kind, Language

__all__ = ["ArraySpec", "Continuous", "Discrete", "EnvSpec", "Kind", "Language"]


@dataclass(frozen=True)
class EnvSpec:
    """Everything a learner needs to build a model for an environment."""

    observations: tuple[ArraySpec, ...]
    actions: tuple[ArraySpec, ...]
    reward_names: tuple[str, ...] = ("reward",)
    max_episode_steps: int = 0  # 0: no step limit

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        return {s.name: s.shape for s in self.observations}

    def action_dims(self) -> dict[str, int]:
        """FLARE's convention: values of a discrete action, else the vector length
        (continuous) or the vocabulary size (language)."""
        dims = {}
        for s in self.actions:
            if isinstance(s.kind, Discrete):
                dims[s.name] = s.kind.num_values
            elif isinstance(s.kind, Language):
                dims[s.name] = s.kind.vocabulary_size
            else:
                dims[s.name] = int(np.prod(s.shape))
        return dims
