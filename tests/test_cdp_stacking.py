"""A process's stacked prediction rows stay stacked until the CDP builds its batch."""

import numpy as np

from flare.framework.batch import take_rows
from flare.framework.cdp_channel import CDPLink
from flare.framework.computation_data_processor import (
    ComputationDataProcessor,
    PendingRequests,
    stack_blocks,
)
from flare.framework.computation_task import ComputationTask
from flare.framework.pipe_messages import (
    PredictBatch,
    PredictReplyBatch,
    PredictRequest,
    ReplyBundle,
)


def _block(rows: dict[int, list[list[float]]]) -> PredictBatch:
    return PredictBatch.pack(
        {a: PredictRequest({"sensor": np.array(r, np.float32)}, {}) for a, r in rows.items()}
    )


def test_blocks_of_consecutive_agents_are_concatenated_in_agent_order():
    first = _block({0: [[0, 0]], 1: [[1, 0], [1, 1]]})
    second = _block({2: [[2, 0]]})
    batch = stack_blocks([second, first])  # arrival order does not matter
    assert batch.agent_ids == [0, 1, 2]
    assert batch.sizes == [1, 2, 1]
    np.testing.assert_array_equal(batch.inputs["sensor"][:, 0], [0, 1, 1, 2])
    np.testing.assert_array_equal(batch.inputs["sensor"][:, 1], [0, 0, 1, 0])


def test_one_block_is_the_batch_as_it_came():
    block = _block({3: [[3, 0]], 4: [[4, 0]]})
    assert stack_blocks([block]) is block


def test_interleaved_blocks_are_put_in_agent_order_row_by_row():
    # agents 0 and 2 asked in one message, agent 1 (same process) in a later one
    batch = stack_blocks([_block({0: [[0, 0]], 2: [[2, 0], [2, 1]]}), _block({1: [[1, 0]]})])
    assert batch.agent_ids == [0, 1, 2]
    assert batch.sizes == [1, 1, 2]
    np.testing.assert_array_equal(batch.inputs["sensor"], [[0, 0], [1, 0], [2, 0], [2, 1]])


def test_interleaved_blocks_spanning_their_first_to_last_row_are_reordered_too():
    # rows [0, 2, 3, 1]: the first and last rows alone look like a consecutive span
    batch = stack_blocks(
        [_block({0: [[0]], 2: [[2]], 3: [[3]]}), _block({1: [[1]]}), _block({4: [[4]]})]
    )
    assert batch.agent_ids == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(batch.inputs["sensor"][:, 0], [0, 1, 2, 3, 4])


def test_take_rows_takes_a_permutation_in_its_order():
    rows = take_rows({"x": np.arange(4)}, np.array([0, 2, 1, 3]))
    np.testing.assert_array_equal(rows["x"], [0, 2, 1, 3])
    np.testing.assert_array_equal(take_rows({"x": np.arange(4)}, np.array([1, 2]))["x"], [1, 2])


def test_pending_forgets_agents_that_stopped_while_they_waited():
    pending = PendingRequests()
    pending.blocks.append((None, _block({0: [[0, 0]], 1: [[1, 0]]})))
    pending.blocks.append((None, _block({2: [[2, 0]]})))
    assert len(pending) == 3
    pending.keep_only({0: None, 2: None})
    assert len(pending) == 2
    assert [block.agent_ids for _, block in pending.blocks] == [[0], [2]]
    np.testing.assert_array_equal(pending.blocks[0][1].inputs["sensor"], [[0, 0]])


def test_two_processes_whose_agents_interleave_each_get_their_own_rows(echo_alg):
    """Process A hosts agents 0 and 2, process B agent 1: one batch of three, and each
    pipe's reply carries exactly its agents' actions (action = round(sum(sensor)))."""
    cdp = ComputationDataProcessor(ComputationTask("RL", echo_alg), batch_wait_s=5.0)
    link_a = CDPLink(cdp.connect([0, 2]), [0, 2])
    link_b = CDPLink(cdp.connect([1]), [1])
    cdp.start()
    try:
        sensor = {0: [[1, 1]], 1: [[5, 0]], 2: [[2, 2], [3, 4]]}
        for agent_id in (0, 2):
            link_a.queue(agent_id, PredictRequest({"sensor": np.array(sensor[agent_id])}, {}))
        link_b.queue(1, PredictRequest({"sensor": np.array(sensor[1])}, {}))
        link_a.flush()
        link_b.flush()
        for link, expected in ((link_a, {0: [[2]], 2: [[4], [7]]}), (link_b, {1: [[5]]})):
            assert link.connection.poll(10), "no reply from the CDP"
            bundle = link.connection.recv()
            assert isinstance(bundle, ReplyBundle)
            assert isinstance(bundle.predict, PredictReplyBatch)
            assert bundle.predict.agent_ids == sorted(expected)
            replies = bundle.replies()
            assert {a: r.actions["action"].tolist() for a, r in replies.items()} == expected
        assert cdp.stats.predict_calls == 1
        assert cdp.stats.predict_instances == 4
    finally:
        cdp.stop()
