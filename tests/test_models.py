import math

import pytest
import torch
from torch import nn

from htsgd.core.models import build_model, hidden_layers, weight_layers


@pytest.mark.parametrize("width, depth", [(5000, 2), (10, 3), (7, 4)])
def test_fcn_shapes_and_parameter_count(width, depth):
    model = build_model("fcn", (1, 28, 28), 10, width=width, depth=depth)
    expected = 784 * width + (depth - 2) * width * width + width * 10
    assert sum(p.numel() for p in model.parameters()) == expected
    assert all(p.dim() == 2 for p in model.parameters())  # bias-free
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_vgg11_wide_shapes_parameter_count_and_init():
    torch.manual_seed(0)
    model = build_model("vgg11_wide", (3, 32, 32), 10)
    channels = [3, 128, 256, 512, 512, 1024, 1024, 1024, 1024]
    convs = sum(9 * a * b for a, b in zip(channels, channels[1:]))
    assert sum(p.numel() for p in model.parameters()) == convs + 1024 * 10 == 36_867_456 + 10_240
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    conv = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(conv) == 8 and all(m.bias is None and m.padding == (1, 1) for m in conv)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    std = conv[3].weight.std().item()
    assert abs(std - math.sqrt(2 / (9 * conv[3].out_channels))) < 0.01 * std


def test_hidden_layers_by_position_not_shape():
    fcn = build_model("fcn", (1, 8, 8), 10, width=10, depth=3)  # hidden width == class count
    assert [name for name, _ in hidden_layers(fcn)] == ["hidden.0", "hidden.1"]
    assert weight_layers(fcn)[-1][0] == "output"
    vgg = build_model("vgg11_wide", (3, 32, 32), 100)
    names = [name for name, _ in hidden_layers(vgg)]
    assert len(names) == 7 and names[0] == "features.3" and "output" not in names


def test_unknown_model_and_bad_input_shape():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="image inputs"):
        build_model("vgg11_wide", (140,), 2)
