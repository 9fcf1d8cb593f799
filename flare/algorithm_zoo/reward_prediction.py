"""Reward prediction, an auxiliary task (UNREAL, Jaderberg et al. 2017,
https://arxiv.org/abs/1611.05397, section 3.2).

It learns, next to an RL task and through a shared perception net, to classify the sign of
a non-zero reward from the step that earned it. Its data come from
``flare.framework.reward_replay.RewardReplayHelper`` (rewarding steps only, balanced).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from flare.framework.algorithm import Algorithm, OptimSetting, TensorDict
from flare.framework.reward_replay import POSITIVE
from flare.model_zoo.auxiliary_models import RewardPredictionModel


class RewardPrediction(Algorithm):
    """Cross-entropy between the predicted reward class and the reward's sign.

    For each sample, with ``r`` its reward summed over the model's reward names (never 0)
    and ``p`` the model's softmax over (negative, positive):

        cost = -log p[positive] if r > 0 else -log p[negative]

    ``learn`` returns ``cost`` (``[n, 1]``, what the optimizer minimises) and ``accuracy``
    (1 where the most likely class is right; not differentiable, for monitoring).
    ``predict`` returns no action: this task never acts.

    Its optimizer holds the shared perception net too, so each learn also moves the RL
    task's features; the two tasks' optimizers are separate (their own learning rates and
    statistics).
    """

    model: RewardPredictionModel  # the one given to __init__

    def __init__(
        self,
        model: RewardPredictionModel,
        gpu_id: int = -1,
        optim: OptimSetting | None = None,
        grad_clip: float | None = None,
    ) -> None:
        if not hasattr(model, "reward_logits"):
            raise TypeError(
                f"RewardPrediction needs a model with reward_logits(), got {type(model).__name__}"
            )
        super().__init__(model, gpu_id=gpu_id, optim=optim, grad_clip=grad_clip)

    def predict(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        return {}, states

    def learn(
        self,
        inputs: TensorDict,
        next_inputs: TensorDict,
        states: TensorDict,
        next_states: TensorDict,
        next_alive: TensorDict,
        actions: TensorDict,
        next_actions: TensorDict,
        rewards: TensorDict,
    ) -> TensorDict:
        total = torch.stack([r.reshape(r.shape[0], -1).sum(-1) for r in rewards.values()]).sum(0)
        if (total == 0).any():
            raise ValueError(
                "RewardPrediction learns from non-zero rewards only; feed it with "
                "RewardReplayHelper (a batch held a zero reward)"
            )
        labels = (total > 0).long() * POSITIVE
        logits = self.model.reward_logits(inputs)
        cost = F.cross_entropy(logits, labels, reduction="none").unsqueeze(-1)
        accuracy = (logits.argmax(-1) == labels).float().unsqueeze(-1)
        return {"cost": cost, "accuracy": accuracy}
