"""``recurrent_group``: run a step function over a batch of sequences of different lengths.

A *sequence* is either a tensor whose rows are its steps (``[length, ...]``: a sentence
of word vectors), or a list whose items are its steps, each itself a sequence (a
paragraph: a list of sentences). ``recurrent_group`` strips one level: at step ``t`` it
hands ``step_func`` the ``t``-th step of every sequence that is that long, so a
paragraph's step function receives a batch of sentences and may call
``recurrent_group`` again to encode them. The batch shrinks as short sequences end
(sequences are sorted by length, longest first, so the live ones are always a prefix),
states of finished sequences are kept as they were at their last step, and the outputs
come back in the caller's order. Everything is plain autograd: gradients flow through
every step and every level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Union

import torch

# A batch of sequences: a list with one sequence per instance. A sequence is a tensor
# (steps are its rows) or a list of sequences (steps are its items).
SequenceBatch = list[Union[torch.Tensor, "SequenceBatch"]]
StepFunction = Callable[..., tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]]


def recurrent_group(
    seq_inputs: Sequence[SequenceBatch],
    insts: Sequence[torch.Tensor],
    init_states: Sequence[torch.Tensor],
    step_func: StepFunction,
    out_states: bool = False,
) -> list[list[torch.Tensor]] | tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    """Apply ``step_func`` along every sequence of a batch, carrying states.

    Args:
        seq_inputs: sequence batches, one per input; the ``i``-th sequence of every input
            must have the same number of steps.
        insts: static inputs, ``[batch, ...]`` tensors: row ``i`` goes with sequence ``i``
            at every one of its steps (e.g. the image a paragraph describes).
        init_states: ``[batch, ...]`` tensors, the states before each sequence's first step.
        step_func: called as ``step_func(*step_inputs, *step_insts, *step_states)`` on the
            ``b`` sequences still running. A tensor sequence's step input is a ``[b, ...]``
            tensor (the rows at this step); a list sequence's is a list of ``b`` sequences.
            Returns ``(outputs, next_states)``: lists of ``[b, ...]`` tensors, as many
            next states as ``init_states``.
        out_states: also return the states after every step.

    Returns:
        ``outputs``: one list per output of ``step_func``, holding one ``[length_i, ...]``
        tensor per sequence, in the caller's order. With ``out_states``,
        ``(outputs, states)`` where ``states`` has the same layout (the last row of a
        sequence's states is its final state).
    """
    if not seq_inputs:
        raise ValueError("recurrent_group needs at least one sequence input")
    lengths = _lengths(seq_inputs)
    size = len(lengths)
    for kind, tensors in (("static input", insts), ("initial state", init_states)):
        for k, tensor in enumerate(tensors):
            if not isinstance(tensor, torch.Tensor) or tensor.dim() == 0 or len(tensor) != size:
                raise ValueError(
                    f"{kind} {k} must be a tensor with one row per sequence ({size}), got "
                    f"{_describe(tensor)}"
                )
    # longest first (stable), so the sequences still running at any step are a prefix
    order = sorted(range(size), key=lambda i: -lengths[i])
    index = torch.tensor(order, dtype=torch.long)
    sorted_inputs = [[batch[i] for i in order] for batch in seq_inputs]
    sorted_insts = [x.index_select(0, index.to(x.device)) for x in insts]
    states = [s.index_select(0, index.to(s.device)) for s in init_states]
    sorted_lengths = [lengths[i] for i in order]

    step_outputs: list[list[torch.Tensor]] = []  # [step][output] -> [b_t, ...]
    step_states: list[list[torch.Tensor]] = []
    for t in range(sorted_lengths[0] if size else 0):
        live = sum(1 for n in sorted_lengths if n > t)
        inputs = [_step(batch[:live], t) for batch in sorted_inputs]
        result = step_func(*inputs, *(x[:live] for x in sorted_insts), *(s[:live] for s in states))
        outputs, new_states = _check_step_result(result, live, len(states), t)
        if step_outputs and len(outputs) != len(step_outputs[0]):
            raise ValueError(
                f"step_func returned {len(outputs)} outputs at step {t} but "
                f"{len(step_outputs[0])} before"
            )
        states = [
            new if live == len(old) else torch.cat([new, old[live:]])
            for new, old in zip(new_states, states, strict=True)
        ]
        step_outputs.append(list(outputs))
        if out_states:
            step_states.append(list(new_states))

    outputs_by_sequence = _regroup(step_outputs, sorted_lengths, order)
    if out_states:
        return outputs_by_sequence, _regroup(step_states, sorted_lengths, order)
    return outputs_by_sequence


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _lengths(seq_inputs: Sequence[SequenceBatch]) -> list[int]:
    """Steps of each sequence, checked to agree across inputs."""
    lengths: list[int] | None = None
    for k, batch in enumerate(seq_inputs):
        if not isinstance(batch, list | tuple):
            raise TypeError(
                f"sequence input {k} must be a list with one sequence per instance, got "
                f"{_describe(batch)}"
            )
        kinds = {isinstance(seq, torch.Tensor) for seq in batch}
        if any(not isinstance(seq, torch.Tensor | list | tuple) for seq in batch):
            raise TypeError(f"sequence input {k}: every sequence must be a tensor or a list")
        if len(kinds) > 1:
            raise TypeError(
                f"sequence input {k} mixes tensor and list sequences; one input holds "
                "sequences of one level"
            )
        these = [_num_steps(seq, k, i) for i, seq in enumerate(batch)]
        if lengths is None:
            lengths = these
        elif these != lengths:
            raise ValueError(
                f"sequence input {k} has lengths {these} but sequence input 0 has {lengths}; "
                "the inputs of one sequence must have the same number of steps"
            )
    assert lengths is not None
    return lengths


def _num_steps(sequence: torch.Tensor | list, k: int, i: int) -> int:
    if isinstance(sequence, torch.Tensor) and sequence.dim() == 0:
        raise ValueError(f"sequence input {k}, sequence {i}: a scalar tensor has no steps")
    length = len(sequence)
    if length == 0:
        raise ValueError(f"sequence input {k}, sequence {i} is empty; every sequence needs a step")
    return length


def _step(sequences: list, t: int) -> torch.Tensor | list:
    """Step ``t`` of each sequence: rows stacked into a batch, or a list of sub-sequences."""
    if isinstance(sequences[0], torch.Tensor):
        return torch.stack([seq[t] for seq in sequences])
    return [seq[t] for seq in sequences]


def _check_step_result(
    result: object, live: int, num_states: int, t: int
) -> tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]:
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise TypeError(
            f"step_func must return (outputs, next_states), two lists; got {_describe(result)}"
        )
    outputs, new_states = result
    if len(new_states) != num_states:
        raise ValueError(
            f"step_func returned {len(new_states)} next states at step {t}; it was given "
            f"{num_states}"
        )
    for kind, tensors in (("output", outputs), ("next state", new_states)):
        for k, tensor in enumerate(tensors):
            if not isinstance(tensor, torch.Tensor) or tensor.dim() == 0 or len(tensor) != live:
                raise ValueError(
                    f"step_func's {kind} {k} at step {t} must have one row per running "
                    f"sequence ({live}), got {_describe(tensor)}"
                )
    return outputs, new_states


def _regroup(
    per_step: list[list[torch.Tensor]], sorted_lengths: list[int], order: list[int]
) -> list[list[torch.Tensor]]:
    """``[step][k] -> [b_t, ...]`` into ``[k][sequence] -> [length, ...]``, caller's order.

    The rows of every step are concatenated once; sequence ``p`` (in sorted order) owns
    row ``p`` of each step it ran, so one gather per output picks every sequence's rows.
    """
    if not per_step:
        return []
    offsets, start = [], 0
    for step in per_step:
        offsets.append(start)
        start += len(step[0])
    # the caller's sequence i sits at sorted position position[i]
    position = {original: p for p, original in enumerate(order)}
    rows = [
        [offsets[t] + position[i] for t in range(sorted_lengths[position[i]])]
        for i in range(len(order))
    ]
    flat_index = torch.tensor([r for seq_rows in rows for r in seq_rows], dtype=torch.long)
    split_sizes = [len(seq_rows) for seq_rows in rows]
    regrouped = []
    for k in range(len(per_step[0])):
        flat = torch.cat([step[k] for step in per_step])
        gathered = flat.index_select(0, flat_index.to(flat.device))
        regrouped.append(list(gathered.split(split_sizes)))
    return regrouped
