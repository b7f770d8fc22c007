"""The paper's two architectures, and which of their weights count as hidden layers.

A layer's role (hidden, first convolution, output) is decided by its position in the
model, never by its shape: a hidden width equal to the class count must not turn a
hidden layer into an output layer (a defect of the original).
"""

import math

import torch
from torch import nn

from .config import MODELS

VGG11_WIDE_CHANNELS = [128, "M", 256, "M", 512, 512, "M", 1024, 1024, "M", 1024, 1024, "M"]


class FCN(nn.Module):
    """Bias-free ReLU network: `depth - 1` hidden layers of `width` units, then the output layer."""

    def __init__(self, in_features: int, width: int, depth: int, num_classes: int):
        super().__init__()
        sizes = [in_features] + [width] * (depth - 1)
        self.hidden = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes, sizes[1:]))
        self.output = nn.Linear(sizes[-1], num_classes, bias=False)

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.output(x)


class VGG11Wide(nn.Module):
    """VGG11 with doubled channels, no bias and no batch-norm, global average pooling."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        layers, channels = [], in_channels
        for spec in VGG11_WIDE_CHANNELS:
            if spec == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                conv = nn.Conv2d(channels, spec, kernel_size=3, padding=1, bias=False)
                fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
                nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
                layers += [conv, nn.ReLU(inplace=True)]
                channels = spec
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.output = nn.Linear(channels, num_classes, bias=False)

    def forward(self, x):
        return self.output(self.pool(self.features(x)).flatten(1))


def build_model(name: str, input_shape, num_classes: int, width: int = 100, depth: int = 2) -> nn.Module:
    """Build `fcn` or `vgg11_wide` for inputs of `input_shape` (without the batch dimension)."""
    if name == "fcn":
        return FCN(math.prod(input_shape), width, depth, num_classes)
    if name == "vgg11_wide":
        if len(input_shape) != 3:
            raise ValueError(f"vgg11_wide needs image inputs (channels, height, width), got shape {tuple(input_shape)}")
        return VGG11Wide(input_shape[0], num_classes)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Linear and Conv2d of the model, in the order the forward pass uses them."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def hidden_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers that receive noise and get pruned: all but the output layer and a first convolution."""
    layers = weight_layers(model)[:-1]
    if layers and isinstance(layers[0][1], nn.Conv2d):
        layers = layers[1:]
    return layers
