"""Learning beside acting: a CT's updates in a thread of their own while its CDP goes on
predicting, so the agents step their envs while the learner learns instead of waiting.

The CDP starts learn ``i`` when its requests arrive, after collecting learn ``i - 1`` and
handing its weights to the CT's acting copy: every prediction between the two uses the
weights after learn ``i - 1`` (a policy lag of one update, as in A3C or IMPALA). Which
weights a prediction sees depends on the order of requests, never on timing, so a seeded
run with full batches stays reproducible (if the algorithm's learn draws no random
numbers: the two threads would share torch's global generator). The agents get their
learn replies at once; the costs in a reply are those of the agent's previous batch (a
helper that acts on per-sample costs, like prioritized replay's, cannot learn this way).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch

from flare.framework.batch import ArrayDict, LearnBatch, split_arrays
from flare.framework.computation_task import ComputationTask


@dataclass
class LearnJob:
    """One learn in flight: whose batches it holds, and its costs to come."""

    agent_ids: list[int]
    sizes: list[int]
    costs: Future[ArrayDict]


class BackgroundLearner:
    """Runs one ``ct.learn`` at a time on a thread of its own."""

    def __init__(self, ct: ComputationTask, torch_threads: int | None = None) -> None:
        ct.act_on_a_copy()
        self.ct = ct
        # (OpenMP's thread count is per thread: set it on the learning thread itself)
        self._pool = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"learn-{ct.name}",
            initializer=_set_torch_threads,
            initargs=(torch_threads,),
        )
        self._job: LearnJob | None = None
        # costs of learns already collected, kept for each agent until its next learn
        self._undelivered: dict[int, ArrayDict] = {}

    @property
    def busy(self) -> bool:
        return self._job is not None and not self._job.costs.done()

    def start(self, batches: dict[int, LearnBatch]) -> dict[int, ArrayDict]:
        """Collect the learn in flight, give its weights to the acting copy, then start
        learning from ``batches`` (by agent id, learned in id order). Returns, for the
        agents in ``batches``, the costs of their previous batch where it has been
        learned (an agent that was not in the collected learn gets its costs from an
        earlier one: none is lost)."""
        self._undelivered.update(self.collect())
        previous = {a: self._undelivered.pop(a) for a in batches if a in self._undelivered}
        self.ct.sync_acting()
        agent_ids = sorted(batches)
        ordered = [batches[a] for a in agent_ids]
        batch = LearnBatch.concat(ordered)
        costs = self._pool.submit(self.ct.learn, batch)
        self._job = LearnJob(agent_ids, [b.size for b in ordered], costs)
        return previous

    def collect(self) -> dict[int, ArrayDict]:
        """Wait for the learn in flight (its error, if it failed, is raised here)."""
        job, self._job = self._job, None
        if job is None:
            return {}
        costs = job.costs.result()
        return dict(zip(job.agent_ids, split_arrays(costs, job.sizes), strict=True))

    def close(self) -> None:
        """Finish the learn in flight (a run's last update counts) and end the thread."""
        try:
            self.collect()
        finally:
            self._pool.shutdown(wait=True)


def _set_torch_threads(threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(threads)
