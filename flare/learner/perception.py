"""Perception nets from a run config's table: an MLP for flat observations, a CNN (then
an MLP) for images.

``perception = { mlp = [64, 64], activation = "tanh" }`` reads a flat observation;
``perception = { cnn = [[32, 8, 4], [64, 4, 2], [64, 3, 1]], mlp = [512],
activation = "relu" }`` reads ``[channels, height, width]`` images: each ``[out_channels,
kernel, stride]`` is a convolution and its activation, the feature cube is flattened,
and the MLP's layers follow (the seed's Atari CNN, as above).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn

from flare.framework.common_functions import Flatten
from flare.learner.config import ConfigError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}
KEYS = ("cnn", "mlp", "activation")


def perception_net(table: dict[str, Any], dims: Sequence[int] | None, where: str) -> nn.Module:
    """The net ``table`` describes, for observations of shape ``dims``."""
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; it takes {', '.join(KEYS)}")
    activation = table.get("activation", "tanh")
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"{where}.activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
        )
    act = ACTIVATIONS[activation]
    layers: list[nn.Module] = []
    if "cnn" in table:
        if dims is None or len(dims) != 3:
            raise ConfigError(f"{where}.cnn reads [channels, height, width] images, not {dims}")
        layers += _convolutions(table["cnn"], int(dims[0]), act, f"{where}.cnn")
        layers.append(Flatten())
        width = _flat_width(nn.Sequential(*layers), dims, where)
        sizes = table.get("mlp", [])
    else:
        if dims is None or len(dims) != 1:
            raise ConfigError(
                f"{where}: an MLP reads a flat observation, not {dims} (images take a cnn)"
            )
        width = int(dims[0])
        sizes = table.get("mlp", [64, 64])
    if not (isinstance(sizes, list) and all(isinstance(n, int) and n > 0 for n in sizes)):
        raise ConfigError(f"{where}.mlp must be a list of layer widths, got {sizes!r}")
    if not sizes and "cnn" not in table:
        raise ConfigError(f"{where}.mlp must name at least one layer")
    for size in sizes:
        layers += [nn.Linear(width, size), act()]
        width = size
    return nn.Sequential(*layers)


def _convolutions(
    spec: Any, channels: int, act: Callable[[], nn.Module], where: str
) -> list[nn.Module]:
    if not (isinstance(spec, list) and spec):
        raise ConfigError(f"{where} must be a list of [out_channels, kernel, stride]")
    layers: list[nn.Module] = []
    for i, layer in enumerate(spec):
        if not (
            isinstance(layer, list)
            and len(layer) == 3
            and all(isinstance(n, int) and n > 0 for n in layer)
        ):
            raise ConfigError(f"{where}[{i}] must be [out_channels, kernel, stride], got {layer!r}")
        out, kernel, stride = layer
        layers += [nn.Conv2d(channels, out, kernel_size=kernel, stride=stride), act()]
        channels = out
    return layers


def _flat_width(net: nn.Module, dims: Sequence[int], where: str) -> int:
    """The flattened features of one image (a dummy pass; an image too small for the
    kernels is a config error, not a torch traceback)."""
    try:
        with torch.no_grad():
            return int(net(torch.zeros(1, *dims)).shape[1])
    except RuntimeError as err:
        raise ConfigError(f"{where}.cnn does not fit images of {list(dims)}: {err}") from None
