"""A language-grounded navigation model with memory: Guided Feature Transformation.

GFT (Yu, Lian, Zhang and Xu, "Guided Feature Transformation (GFT): A Neural Language
Grounding Module for Embodied Agents", CoRL 2018): the instruction is encoded into a
vector, and that vector generates linear transformations that are applied, one after
the other, to the visual feature of every position of the image (``f <- relu(T [f; 1])``):
the words decide what the features become ("red ball here"), not only which channels
count. The transformed image, with the instruction's vector, feeds a GRU that carries
memory across steps (what was seen before turning away), and the policy and value heads
read the GRU's state.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

from flare.framework.algorithm import TensorDict
from flare.framework.specs import SpecList
from flare.model_zoo.rnn_models import STATE, MemoryActorCritic


class GFTModelAC(MemoryActorCritic):
    """Actor-critic over ``{image, instruction}`` with a GFT language module and a GRU.

    The image is symbolic (minigrid's object / colour / state index per cell,
    ``[channels, height, width]`` uint8): each channel's index is embedded and the
    embeddings are summed per cell, then two 3x3 convolutions give a feature per
    position. With ``pixels`` it is a camera's frame (uint8 intensities, e.g. MiniWorld's
    RGB view): two strided convolutions give the grid of features GFT transforms. The
    instruction (token ids, 0 is padding) is embedded word by word and read by a GRU; its
    final state generates ``num_transforms`` matrices
    ``[visual_channels, visual_channels + 1]`` applied to every position's feature.

    Args:
        image_shape: ``[channels, height, width]`` of the ``image_name`` observation.
        instruction_length: tokens in the ``instruction_name`` observation.
        vocabulary_size: token ids are ``0 .. vocabulary_size - 1`` (0 pads).
        num_actions: values of the discrete ``action``.
        index_values: distinct values per image channel (ids ``0 .. index_values - 1``).
        visual_channels: features per position (the size GFT transforms).
        num_transforms: GFT's chained transformations.
        language_size: the instruction vector's width.
        hidden_size: the memory's width.
        pixels: the image is intensities, not indices (``index_values`` unused).
    """

    channel_offsets: torch.Tensor  # a buffer, registered in __init__

    def __init__(
        self,
        image_shape: Sequence[int],
        instruction_length: int,
        vocabulary_size: int,
        num_actions: int,
        index_values: int = 16,
        visual_channels: int = 16,
        num_transforms: int = 2,
        language_size: int = 64,
        hidden_size: int = 128,
        image_name: str = "image",
        instruction_name: str = "instruction",
        pixels: bool = False,
    ) -> None:
        super().__init__()
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be [channels, height, width], got {image_shape}")
        for name, value in (
            ("instruction_length", instruction_length),
            ("vocabulary_size", vocabulary_size),
            ("num_actions", num_actions),
            ("num_transforms", num_transforms),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.image_shape = tuple(int(d) for d in image_shape)
        self.instruction_length = int(instruction_length)
        self.image_name, self.instruction_name = image_name, instruction_name
        self.index_values = index_values
        self.hidden_size = hidden_size
        channels, height, width = self.image_shape
        self.visual_channels = visual_channels
        self.num_transforms = num_transforms
        self.pixels = bool(pixels)
        if self.pixels:  # RGB frames: strided convolutions down to a grid of features
            self.vision = nn.Sequential(
                nn.Conv2d(channels, 32, 8, stride=4),
                nn.ReLU(),
                nn.Conv2d(32, visual_channels, 3, stride=2, padding=1),
                nn.ReLU(),
            )
            self.register_buffer("channel_offsets", torch.zeros(1, channels, 1, 1))
            with torch.no_grad():
                grid = self.vision(torch.zeros(1, *self.image_shape)).shape[2:]
            height, width = int(grid[0]), int(grid[1])
        else:
            # one table per image channel; channel c's ids are offset by c * index_values
            self.cell_embedding = nn.Embedding(channels * index_values, visual_channels)
            self.register_buffer(
                "channel_offsets", torch.arange(channels).view(1, channels, 1, 1) * index_values
            )
            self.vision = nn.Sequential(
                nn.Conv2d(visual_channels, visual_channels, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(visual_channels, visual_channels, 3, padding=1),
                nn.ReLU(),
            )
        self.word_embedding = nn.Embedding(vocabulary_size, 32, padding_idx=0)
        self.instruction_reader = nn.GRU(32, language_size, batch_first=True)
        self.transform_generator = nn.Linear(
            language_size, num_transforms * visual_channels * (visual_channels + 1)
        )
        # start every transformation near [I | 0] (features pass through unchanged), so the
        # words first refine the features instead of scrambling them
        with torch.no_grad():
            self.transform_generator.weight.mul_(0.1)
            identity = torch.eye(visual_channels, visual_channels + 1)
            self.transform_generator.bias.copy_(identity.repeat(num_transforms, 1, 1).flatten())
        self.scene = nn.Sequential(
            nn.Linear(visual_channels * height * width, hidden_size), nn.ReLU()
        )
        self.memory = nn.GRUCell(hidden_size + language_size, hidden_size)
        self.policy_head = nn.Linear(hidden_size, num_actions)
        self.value_head = nn.Linear(hidden_size, 1)

    def get_input_specs(self) -> SpecList:
        return [
            (self.image_name, dict(shape=self.image_shape, dtype="uint8")),
            (self.instruction_name, dict(shape=[self.instruction_length], dtype="int64")),
        ]

    def get_state_specs(self) -> SpecList:
        return [(STATE, dict(shape=[self.hidden_size]))]

    def get_action_specs(self) -> SpecList:
        return [("action", dict(shape=[1], dtype="int64"))]

    # ----- the parts ----------------------------------------------------------------------
    def read_instruction(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, length]`` token ids (0 pads, at the end) to ``[B, language_size]``.

        Each distinct instruction is read once (a batch of steps holds few: an episode
        keeps its instruction)."""
        distinct, row_of = torch.unique(tokens, dim=0, return_inverse=True)
        lengths = (distinct != 0).sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(
            self.word_embedding(distinct), lengths, batch_first=True, enforce_sorted=False
        )
        _, last = self.instruction_reader(packed)
        return last[0].index_select(0, row_of)

    def see(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, channels, H, W]`` indices (or, with ``pixels``, 0..255 intensities) to
        ``[B, visual_channels, H', W']`` features."""
        if self.pixels:
            return self.vision(image.float() / 255.0)
        ids = image.long().clamp(max=self.index_values - 1) + self.channel_offsets
        cells = self.cell_embedding(ids).sum(1)  # [B, H, W, visual_channels]
        return self.vision(cells.permute(0, 3, 1, 2))

    def transform(self, features: torch.Tensor, language: torch.Tensor) -> torch.Tensor:
        """GFT: ``f <- relu(T_k [f; 1])`` at every position, for each generated ``T_k``."""
        batch, channels, height, width = features.shape
        matrices = self.transform_generator(language).view(
            batch, self.num_transforms, channels, channels + 1
        )
        f = features.flatten(2)  # [B, C, H*W]
        ones = f.new_ones(batch, 1, height * width)
        for k in range(self.num_transforms):
            f = torch.relu(torch.bmm(matrices[:, k], torch.cat([f, ones], dim=1)))
        return f.view(batch, channels, height, width)

    def memory_features(self, inputs: TensorDict) -> torch.Tensor:
        language = self.read_instruction(inputs[self.instruction_name])
        grounded = self.transform(self.see(inputs[self.image_name]), language)
        return torch.cat([self.scene(grounded.flatten(1)), language], dim=1)

    def memory_step(self, features: torch.Tensor, states: TensorDict) -> TensorDict:
        return {STATE: self.memory(features, states[STATE])}
