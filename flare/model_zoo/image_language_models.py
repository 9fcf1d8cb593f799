"""Models that see a top-down image and read an instruction given as token ids."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.distributions import Distribution

from flare.framework.algorithm import Model, TensorDict
from flare.framework.specs import SpecList
from flare.model_zoo.simple_models import categorical


class ImageInstructionModelAC(Model):
    """Actor-critic whose policy depends on both an image and an instruction.

    The image (``[channels, height, width]``, 0..255) goes through two small
    convolutions; the instruction's tokens are embedded and concatenated in order (word
    order matters for most instructions) and turned into one gate per image feature
    channel (gated attention, Chaplot et al. 2018: the instruction picks which features
    of the image matter, e.g. the red ones). The gated features feed an MLP with a
    policy head (one discrete action) and a value head.

    Args:
        image_shape: ``[channels, height, width]`` of the ``image_name`` observation.
        instruction_length: tokens in the ``instruction_name`` observation.
        vocabulary_size: token ids are ``0 .. vocabulary_size - 1``.
        num_actions: values of the discrete ``action``.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        instruction_length: int,
        vocabulary_size: int,
        num_actions: int,
        hidden: int = 128,
        image_name: str = "image",
        instruction_name: str = "instruction",
    ) -> None:
        super().__init__()
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be [channels, height, width], got {image_shape}")
        self.image_shape = tuple(int(d) for d in image_shape)
        self.instruction_length = int(instruction_length)
        self.image_name, self.instruction_name = image_name, instruction_name
        channels, height, width = self.image_shape
        self.vision = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
        )
        self.embedding = nn.Embedding(vocabulary_size, 16)
        self.gate = nn.Sequential(nn.Linear(16 * self.instruction_length, 32), nn.Sigmoid())
        self.trunk = nn.Sequential(nn.Linear(32 * height * width, hidden), nn.ReLU())
        self.policy_head = nn.Linear(hidden, num_actions)
        self.value_head = nn.Linear(hidden, 1)

    def get_input_specs(self) -> SpecList:
        return [
            (self.image_name, dict(shape=self.image_shape, dtype="uint8")),
            (self.instruction_name, dict(shape=[self.instruction_length], dtype="int64")),
        ]

    def get_action_specs(self) -> SpecList:
        return [("action", dict(shape=[1], dtype="int64"))]

    def features(self, inputs: TensorDict) -> torch.Tensor:
        seen = self.vision(inputs[self.image_name].float() / 255.0)  # [B, 32, H, W]
        gate = self.gate(self.embedding(inputs[self.instruction_name]).flatten(1))  # [B, 32]
        return self.trunk((seen * gate[:, :, None, None]).flatten(1))

    def policy(
        self, inputs: TensorDict, states: TensorDict
    ) -> tuple[dict[str, Distribution], TensorDict]:
        return {"action": categorical(self.policy_head(self.features(inputs)))}, states

    def value(self, inputs: TensorDict, states: TensorDict) -> tuple[TensorDict, TensorDict]:
        return {"v_value": self.value_head(self.features(inputs))}, states

    def policy_and_value(
        self, inputs: TensorDict, states: TensorDict
    ) -> tuple[dict[str, Distribution], TensorDict, TensorDict]:
        features = self.features(inputs)
        dists: dict[str, Distribution] = {"action": categorical(self.policy_head(features))}
        return dists, {"v_value": self.value_head(features)}, states
