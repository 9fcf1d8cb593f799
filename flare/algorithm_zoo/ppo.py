"""Proximal Policy Optimization with the clipped objective (Schulman et al. 2017)."""

from __future__ import annotations

import torch

from flare.algorithm_zoo.policies import (
    BEHAVIOR_LOG_PROB,
    joint_entropy,
    joint_log_prob,
    sample_actions,
)
from flare.algorithm_zoo.returns import generalized_advantages
from flare.framework.algorithm import Algorithm, Model, OptimSetting, TensorDict, weighted_mean
from flare.framework.memory import unroll_states
from flare.framework.specs import SpecList


class PPO(Algorithm):
    """PPO-clip on on-policy runs (use it with ``OnlineHelper``).

    Each learn call gets the runs the agents gathered since their last learn. Advantages
    come from GAE over each run, with values from the model as it is before the update;
    then ``num_epochs`` passes over the batch in shuffled minibatches each take one
    optimizer step on

        -min(r A, clip(r, 1 - eps, 1 + eps) A) + value_cost_weight (V - G)^2
        - entropy_weight H(pi)

    where ``r = pi(a|s) / mu(a|s)`` and ``mu`` is the policy that acted: its
    log-probability is returned by ``predict`` and stored with each step, so the ratio is
    exact even for a step taken just before the previous update.

    The model must provide ``policy()`` and ``value()`` with a ``v_value``. With a memory
    model, minibatches are whole runs (about ``minibatch_size`` transitions each) and each
    minibatch replays its runs' states from their first stored state, so the cost
    backpropagates through time.

    Args:
        discount_factor: gamma.
        gae_lambda: GAE's lambda (0 is one-step TD, 1 Monte-Carlo).
        clip_epsilon: the ratio's clip range.
        num_epochs: passes over each batch.
        minibatch_size: transitions per optimizer step.
        normalize_advantages: standardise advantages within each minibatch.
        value_cost_weight, entropy_weight: weights of the value and entropy terms.
    """

    def __init__(
        self,
        model: Model,
        gpu_id: int = -1,
        discount_factor: float = 0.99,
        gae_lambda: float = 0.95,
        clip_epsilon: float = 0.2,
        num_epochs: int = 10,
        minibatch_size: int = 64,
        normalize_advantages: bool = True,
        value_cost_weight: float = 0.5,
        entropy_weight: float = 0.0,
        optim: OptimSetting | None = None,
        grad_clip: float | None = 0.5,
    ) -> None:
        optim = optim if optim is not None else (torch.optim.Adam, {"lr": 3e-4})
        super().__init__(model, gpu_id=gpu_id, optim=optim, grad_clip=grad_clip)
        if not 0.0 <= discount_factor <= 1.0:
            raise ValueError(f"discount_factor must be in [0, 1], got {discount_factor}")
        if not 0.0 <= gae_lambda <= 1.0:
            raise ValueError(f"gae_lambda must be in [0, 1], got {gae_lambda}")
        if clip_epsilon <= 0:
            raise ValueError(f"clip_epsilon must be > 0, got {clip_epsilon}")
        if num_epochs < 1 or minibatch_size < 1:
            raise ValueError("num_epochs and minibatch_size must be >= 1")
        self.discount_factor = discount_factor
        self.gae_lambda = gae_lambda
        self.clip_epsilon = clip_epsilon
        self.num_epochs = num_epochs
        self.minibatch_size = minibatch_size
        self.normalize_advantages = normalize_advantages
        self.value_cost_weight = value_cost_weight
        self.entropy_weight = entropy_weight

    def get_behavior_specs(self) -> SpecList:
        return [(BEHAVIOR_LOG_PROB, dict(shape=[1]))]

    def predict(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        dists, next_states = self.model.policy(inputs, states)
        actions = sample_actions(dists)
        return {**actions, BEHAVIOR_LOG_PROB: joint_log_prob(dists, actions)}, next_states

    @torch.no_grad()
    def advantages(
        self,
        inputs: TensorDict,
        next_inputs: TensorDict,
        states: TensorDict,
        next_states: TensorDict,
        next_alive: TensorDict,
        rewards: TensorDict,
        sequence_lengths: list[int],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE advantages and value targets, ``[n, 1]`` each, computed run by run."""
        heads = self.model.heads_from_states(inputs, next_states)
        values = (heads[1] if heads is not None else self.model.value(inputs, states)[0])["v_value"]
        next_values = self.model.value(next_inputs, next_states)[0]["v_value"]
        reward = rewards["reward"]
        if not values.shape == next_values.shape == reward.shape:
            raise ValueError(
                f"v_value {tuple(values.shape)}, next v_value {tuple(next_values.shape)} and "
                f"reward {tuple(reward.shape)} must have the same shape"
            )
        pieces = [
            generalized_advantages(r, v, nv, alive, self.discount_factor, self.gae_lambda)
            for r, v, nv, alive in zip(
                reward.split(sequence_lengths),
                values.split(sequence_lengths),
                next_values.split(sequence_lengths),
                next_alive["alive"].split(sequence_lengths),
                strict=True,
            )
        ]
        return torch.cat([a for a, _ in pieces]), torch.cat([g for _, g in pieces])

    def update(
        self,
        *,
        sample_weights: torch.Tensor | None = None,
        sequence_lengths: list[int] | None = None,
        **batch: TensorDict,
    ) -> TensorDict:
        self._check_trainable()
        inputs, states, actions = batch["inputs"], batch["states"], batch["actions"]
        size = len(batch["next_alive"]["alive"])
        lengths = sequence_lengths if sequence_lengths is not None else [size]
        with torch.no_grad():
            replayed = self.with_memory(batch, lengths)
        advantages, targets = self.advantages(
            inputs,
            batch["next_inputs"],
            replayed["states"],
            replayed["next_states"],
            batch["next_alive"],
            batch["rewards"],
            lengths,
        )
        old_log_prob = actions[BEHAVIOR_LOG_PROB]
        self.train_mode()
        epoch_costs: list[tuple[torch.Tensor, TensorDict]] = []
        for _ in range(self.num_epochs):  # the costs returned are the last epoch's
            epoch_costs = []
            for rows, run_lengths in self._minibatches(size, lengths, advantages.device):
                minibatch_costs = self._minibatch_step(
                    rows,
                    run_lengths,
                    inputs,
                    states,
                    actions,
                    old_log_prob,
                    advantages,
                    targets,
                    sample_weights,
                )
                epoch_costs.append((rows, minibatch_costs))
        return _unshuffle(epoch_costs, size)

    def _minibatches(
        self, size: int, lengths: list[int], device: torch.device
    ) -> list[tuple[torch.Tensor, list[int] | None]]:
        """Shuffled minibatches: of transitions, or of whole runs for a memory model (with
        the runs' lengths, in the order their rows are listed)."""
        if not self.state_specs:
            order = torch.randperm(size, device=device)
            return [(rows, None) for rows in order.split(self.minibatch_size)]
        starts = [0, *torch.tensor(lengths).cumsum(0).tolist()[:-1]]
        minibatches: list[tuple[torch.Tensor, list[int] | None]] = []
        rows: list[int] = []
        run_lengths: list[int] = []
        for run in torch.randperm(len(lengths)).tolist():
            rows.extend(range(starts[run], starts[run] + lengths[run]))
            run_lengths.append(lengths[run])
            if len(rows) >= self.minibatch_size:
                minibatches.append((torch.tensor(rows, device=device), run_lengths))
                rows, run_lengths = [], []
        if rows:
            minibatches.append((torch.tensor(rows, device=device), run_lengths))
        return minibatches

    def _minibatch_step(
        self,
        rows: torch.Tensor,
        run_lengths: list[int] | None,
        inputs: TensorDict,
        states: TensorDict,
        actions: TensorDict,
        old_log_prob: torch.Tensor,
        advantages: torch.Tensor,
        targets: torch.Tensor,
        sample_weights: torch.Tensor | None,
    ) -> TensorDict:
        """One optimizer step on the rows ``rows`` (whole runs of ``run_lengths`` for a
        memory model); their per-sample costs, detached."""
        mb_inputs = {k: v[rows] for k, v in inputs.items()}
        mb_states = {k: v[rows] for k, v in states.items()}
        heads = None
        if run_lengths is not None:
            mb_states, replayed = unroll_states(self.model, mb_inputs, mb_states, run_lengths)
            heads = self.model.heads_from_states(mb_inputs, replayed)
        mb_actions = {k: v[rows] for k, v in actions.items()}
        advantage = advantages[rows]
        if self.normalize_advantages and len(rows) > 1:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        if heads is None:
            dists, values, _ = self.model.policy_and_value(mb_inputs, mb_states)
        else:
            dists, values = heads
        log_prob = joint_log_prob(dists, mb_actions)
        ratio = torch.exp(log_prob - old_log_prob[rows])
        clipped = ratio.clamp(1.0 - self.clip_epsilon, 1.0 + self.clip_epsilon)
        policy_cost = -torch.min(ratio * advantage, clipped * advantage)
        value_cost = (values["v_value"] - targets[rows]).pow(2)
        entropy = joint_entropy(dists, len(rows))
        cost = policy_cost + self.value_cost_weight * value_cost - self.entropy_weight * entropy
        weights = sample_weights[rows] if sample_weights is not None else None
        self.optimizer_step(weighted_mean(cost, weights))
        return {
            "cost": cost.detach(),
            "policy_cost": policy_cost.detach(),
            "value_cost": value_cost.detach(),
            "entropy": entropy.detach(),
            "clipped": ((ratio - clipped).abs() > 0).float().detach(),
        }


def _unshuffle(pieces: list[tuple[torch.Tensor, TensorDict]], size: int) -> TensorDict:
    """Per-sample costs back in batch order from the minibatches that computed them."""
    names = pieces[0][1].keys()
    out = {name: torch.empty(size, 1, device=pieces[0][0].device) for name in names}
    for rows, costs in pieces:
        for name in names:
            out[name][rows] = costs[name].reshape(len(rows), 1)
    return out
