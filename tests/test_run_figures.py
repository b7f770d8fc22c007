"""The train notebook's figures (`htsgd.report.run_figures`): what they draw, and that they are training code only."""

import json
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
import torch

from htsgd.core.models import build_model, hidden_layers
from htsgd.report import run_plots
from htsgd.report.run_figures import column_norm_distribution, learning_curves

# What importing run_figures may load of htsgd: the core, the package files on the way, and the shared drawing.
TRAINING_MODULES = ("htsgd", "htsgd.errors", "htsgd.report", "htsgd.report.run_figures", "htsgd.report.run_plots")


@pytest.fixture(autouse=True)
def agg():
    """pyplot off screen, and its figures closed after each test."""
    backend = matplotlib.get_backend()
    matplotlib.use("Agg")
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
    matplotlib.use(backend)


def test_imports_only_training_code():
    """The train notebook imports run_figures, so every htsgd module it loads is training code, whose edit makes every
    trained run out of date: the core and run_plots only, never the analysis or the group report's figures."""
    code = ("import json, sys; import htsgd.report.run_figures; "
            "print(json.dumps(sorted(m for m in sys.modules if m == 'htsgd' or m.startswith('htsgd.'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert "htsgd.report.run_plots" in loaded
    assert [m for m in loaded if m not in TRAINING_MODULES and not m.startswith("htsgd.core")] == []


def test_learning_curves_draw_both_splits():
    history = [{"step": s, "train_loss": 2.0 / (s + 1), "test_loss": 2.5 / (s + 1), "train_acc": 50.0 + s,
                "test_acc": 45.0 + s} for s in (0, 10, 20)]
    loss_ax, acc_ax = learning_curves(history).axes
    assert [line.get_label() for line in loss_ax.lines] == ["train", "test"] == [t.get_text() for t in
                                                                                 acc_ax.get_legend().get_texts()]
    assert loss_ax.lines[1].get_ydata().tolist() == [2.5, 2.5 / 11, 2.5 / 21] and loss_ax.get_yscale() == "log"
    assert acc_ax.lines[0].get_xdata().tolist() == [0, 10, 20]


def test_column_norm_distribution_is_the_first_layers_ccdf():
    torch.manual_seed(0)
    model = build_model("fcn", (1, 8, 8), 10, width=40)
    name, layer = hidden_layers(model)[0]
    with torch.no_grad():
        layer.weight[:3] = 0.0  # dead units: no point on log axes
    (ax,) = column_norm_distribution(model).axes
    expected = np.sort(layer.weight.detach().double().norm(dim=1).numpy())[3:]
    x, share = ax.lines[0].get_data()
    assert np.allclose(x, expected, rtol=0, atol=1e-12) and share.tolist() == pytest.approx(1 - np.arange(37) / 37)
    assert (ax.get_xscale(), ax.get_yscale(), ax.get_title()) == ("log", "log", "37 columns")
    assert name in ax.get_xlabel()
    assert run_plots.first_layer_norms(model)[0] == name

