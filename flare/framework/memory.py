"""Learning with short-term memory: replay a run's states from the state it started with.

An agent stores, with every step, the states its model had before that step. To learn,
only the first of a run's stored states is used: the states of the later steps are
recomputed by the model being trained (``Model.next_states``), run by run, through
``recurrent_group``, so the gradient of a cost at step ``t`` flows back through every
earlier step of its run (backpropagation through time) and into what the memory chose to
keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from flare.framework.recurrent import recurrent_group

if TYPE_CHECKING:
    from flare.framework.algorithm import Model

TensorDict = dict[str, torch.Tensor]


def unroll_states(
    model: Model,
    inputs: TensorDict,
    states: TensorDict,
    run_lengths: list[int],
) -> tuple[TensorDict, TensorDict]:
    """The states before and after every step of a batch of runs, recomputed.

    Args:
        model: a flare Model; ``model.next_states(inputs, states)`` gives one step (or,
            faster, ``memory_features`` for every step at once, then ``memory_step``).
        inputs: ``[n, ...]`` per name: the runs' steps, run after run.
        states: ``[n, ...]`` per name: the stored states; only each run's first row is read.
        run_lengths: steps per run, summing to ``n``.

    Returns:
        ``(states, next_states)``, ``[n, ...]`` per name in the batch's order: row ``t`` of
        a run holds the states before and after its step ``t``.
    """
    size = len(next(iter(states.values())))
    if sum(run_lengths) != size or any(n < 1 for n in run_lengths):
        raise ValueError(f"run lengths {run_lengths} must be positive and sum to {size}")
    state_names = list(states)
    starts = torch.tensor([0, *run_lengths[:-1]]).cumsum(0)
    initial = [states[name].index_select(0, starts.to(states[name].device)) for name in state_names]

    # the state-free part of every step at once, when the model splits its step
    features = model.memory_features(inputs)
    if features is not None:
        sequences = [list(features.split(run_lengths))]

        def advance(step: Sequence[torch.Tensor], step_states: TensorDict) -> TensorDict:
            return model.memory_step(step[0], step_states)
    else:
        sequences = [list(inputs[name].split(run_lengths)) for name in inputs]

        def advance(step: Sequence[torch.Tensor], step_states: TensorDict) -> TensorDict:
            return model.next_states(dict(zip(inputs, step, strict=True)), step_states)

    def step(*tensors: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        count = len(sequences)
        step_states = dict(zip(state_names, tensors[count:], strict=True))
        updated = advance(tensors[:count], step_states)
        if not isinstance(updated, dict) or set(updated) != set(state_names):
            got = sorted(updated) if isinstance(updated, dict) else type(updated).__name__
            raise KeyError(
                f"{type(model).__name__}'s next states must be {sorted(state_names)}, got {got}"
            )
        new = [updated[name] for name in state_names]
        return new, new

    after = recurrent_group(sequences, [], initial, step)
    assert isinstance(after, list)
    next_states, before = {}, {}
    for name, first, runs in zip(state_names, initial, after, strict=True):
        next_states[name] = torch.cat(runs)
        before[name] = torch.cat(
            [piece for r, run in enumerate(runs) for piece in (first[r : r + 1], run[:-1])]
        )
    return before, next_states
