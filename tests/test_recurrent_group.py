"""recurrent_group on hand-computed examples: flat sequences, paragraphs of sentences of
words with static images, gradients through every level, and bad input."""

import pytest
import torch

from flare.framework.recurrent import recurrent_group


def column(*values: float, grad: bool = False) -> torch.Tensor:
    return torch.tensor([[float(v)] for v in values], requires_grad=grad)


def running_sum(x, state):
    new_state = state + x
    return [2 * new_state], [new_state]


def test_sequences_of_different_lengths_come_back_in_order():
    seqs = [column(1, 2, 3), column(4), column(5, 6)]
    live_sizes = []

    def step(x, state):
        live_sizes.append(len(x))
        return running_sum(x, state)

    (outputs,), (states,) = recurrent_group([seqs], [], [torch.zeros(3, 1)], step, out_states=True)
    assert live_sizes == [3, 2, 1]  # the batch shrinks as sequences end
    assert [o.flatten().tolist() for o in outputs] == [[2, 6, 12], [8], [10, 22]]
    assert [s.flatten().tolist() for s in states] == [[1, 3, 6], [4], [5, 11]]


def test_without_out_states_only_outputs_return():
    outputs = recurrent_group([[column(1, 2)]], [], [torch.zeros(1, 1)], running_sum)
    assert len(outputs) == 1 and outputs[0][0].flatten().tolist() == [2, 6]


def test_initial_states_and_static_inputs_follow_their_sequence():
    # sorted longest first inside; rows of insts and init_states must stay with their sequence
    seqs = [column(1), column(1, 1, 1), column(1, 1)]
    init = column(100, 200, 300)
    scale = column(1, 10, 1000)

    def step(x, s, state):
        new = state + x * s
        return [new], [new]

    (outputs,) = recurrent_group([seqs], [scale], [init], step)
    assert [o.flatten().tolist() for o in outputs] == [[101], [210, 220, 230], [1300, 2300]]


def test_two_inputs_step_together():
    words = [column(1, 2), column(3)]
    weights = [column(10, 100), column(1000)]

    def step(w, x, state):
        new = state + w * x
        return [new, x], [new]

    (sums, echoed) = recurrent_group([weights, words], [], [torch.zeros(2, 1)], step)
    assert [s.flatten().tolist() for s in sums] == [[10, 210], [3000]]
    assert [e.flatten().tolist() for e in echoed] == [[1, 2], [3]]


def paragraph_encoder(paragraphs, images):
    """Words of a sentence add up, scaled by the paragraph's image; a paragraph's state
    adds up its sentences' encodings."""

    def word_step(word, image, state):
        new = state + word * image
        return [new], [new]

    def sentence_step(sentences, image, state):
        _, (word_states,) = recurrent_group(
            [sentences], [image], [torch.zeros_like(state)], word_step, out_states=True
        )
        encoding = torch.stack([s[-1] for s in word_states])  # a sentence's final state
        new = state + encoding
        return [new], [new]

    return recurrent_group(
        [paragraphs], [images], [torch.zeros(len(paragraphs), 1)], sentence_step, out_states=True
    )


def test_paragraphs_of_sentences_of_words_with_static_images():
    words = {v: column(v, grad=True) for v in range(1, 9)}  # one leaf per word, for gradients

    def sentence(*values):
        return torch.cat([words[v] for v in values])

    paragraphs = [
        [sentence(1, 2), sentence(3)],
        [sentence(4), sentence(5, 6, 7), sentence(8)],
    ]
    images = column(10, 100, grad=True)
    (outputs,), (final_states,) = paragraph_encoder(paragraphs, images)
    # A: (1+2)*10 = 30, 3*10 = 30 -> 30, 60; B: 400, 1800, 800 -> 400, 2200, 3000
    assert [o.flatten().tolist() for o in outputs] == [[30, 60], [400, 2200, 3000]]
    assert [s[-1].item() for s in final_states] == [60, 3000]

    total = sum(s[-1].sum() for s in final_states)
    total.backward()
    # d total / d word = its paragraph's image; d total / d image = sum of its words
    assert [words[v].grad.item() for v in range(1, 9)] == [10] * 3 + [100] * 5
    assert images.grad.flatten().tolist() == [1 + 2 + 3, 4 + 5 + 6 + 7 + 8]


def test_a_gru_batched_equals_one_sequence_at_a_time_values_and_gradients():
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(3, 4)
    lengths = [2, 5, 1, 4, 4]
    seqs = [torch.randn(n, 3) for n in lengths]
    init = torch.randn(len(lengths), 4)

    def step(x, h):
        new = cell(x, h)
        return [new.sum(1, keepdim=True)], [new]

    (batched,) = recurrent_group([seqs], [], [init], step)
    loss = sum((o**2).sum() for o in batched)
    grads = torch.autograd.grad(loss, list(cell.parameters()))

    expected, reference_loss = [], 0.0
    for seq, h0 in zip(seqs, init, strict=True):
        h, outs = h0[None], []
        for x in seq:
            h = cell(x[None], h)
            outs.append(h.sum(1, keepdim=True))
        expected.append(torch.cat(outs))
        reference_loss = reference_loss + (torch.cat(outs) ** 2).sum()
    reference_grads = torch.autograd.grad(reference_loss, list(cell.parameters()))

    for got, want in zip(batched, expected, strict=True):
        torch.testing.assert_close(got, want)
    for got, want in zip(grads, reference_grads, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize(
    ("seq_inputs", "insts", "states", "message"),
    [
        ([], [], [], "at least one sequence input"),
        ([[column(1), column(2, 3)], [column(1), column(2)]], [], [], "same number of steps"),
        ([[column(1), [column(2)]]], [], [], "mixes tensor and list"),
        ([[column(1), torch.zeros(0, 1)]], [], [], "sequence 1 is empty"),
        ([[column(1), column(2)]], [torch.zeros(3, 1)], [], "static input 0"),
        ([[column(1), column(2)]], [], [torch.zeros(1, 1)], "initial state 0"),
        ([column(1, 2)], [], [], "one sequence per instance"),
    ],
)
def test_bad_input_names_the_problem(seq_inputs, insts, states, message):
    with pytest.raises((ValueError, TypeError), match=message):
        recurrent_group(seq_inputs, insts, states, running_sum)


def test_a_step_function_that_breaks_the_contract_is_named():
    seqs = [column(1, 2), column(3)]

    def wrong_rows(x, state):
        return [torch.zeros(5, 1)], [state + x]

    with pytest.raises(ValueError, match="output 0 at step 0 must have one row per running"):
        recurrent_group([seqs], [], [torch.zeros(2, 1)], wrong_rows)

    def lost_state(x, state):
        return [x], []

    with pytest.raises(ValueError, match="returned 0 next states"):
        recurrent_group([seqs], [], [torch.zeros(2, 1)], lost_state)

    with pytest.raises(TypeError, match=r"must return \(outputs, next_states\)"):
        recurrent_group([seqs], [], [torch.zeros(2, 1)], lambda x, s: x)
