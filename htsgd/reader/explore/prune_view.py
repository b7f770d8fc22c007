"""The pruning widget both explore views end in: a slider sets the amount removed under the criterion chosen, and
the pruned network's accuracy, the first layer's column norms with the cut, and the paper's mce point are shown,
beside the record's own numbers where the network is a run of it."""

import html

import ipywidgets as widgets

from ...analysis.run_analysis import SWEEP_FRACTIONS
from ...core.config import COMPRESSION_ERROR_METRICS
from ...core.prune import DEFAULT_PRUNING_TYPE, MCE_RATIO, PRUNING_CRITERIA
from ...report.run_plots import first_layer_norms
from .figures import norm_figure, png
from .pruning import prune_point, snap
from .records import amount_key
from .text import pct, plain_text


class PruneView:
    """A slider over the sweep's fractions (0, 2 %, ..., 100 %) and a criterion: the pruned network's accuracy,
    the first layer's column norms with the cut, and the paper's mce point. `point` and `mce` hold the numbers."""

    CRITERIA = {"parameter_ratio": "fraction of hidden units (columns) removed, smallest norm first",
                "mce": "share of each layer's squared norm removed (mce)"}

    def __init__(self, fraction: float = 0.5):
        self.criterion = widgets.ToggleButtons(options=[(c, c) for c in PRUNING_CRITERIA[::-1]],
                                               value="parameter_ratio", description="criterion")
        self.slider = widgets.SelectionSlider(options=[(f"{f:.0%}", f) for f in SWEEP_FRACTIONS],
                                              value=snap(fraction), description="removed",
                                              continuous_update=False, layout=widgets.Layout(width="500px"))
        self.meaning = widgets.HTML()
        self.text = widgets.HTML("<i>no network yet</i>")
        self.figure = widgets.Image(format="png")
        self.widget = widgets.VBox([widgets.HBox([self.criterion]), widgets.HBox([self.slider, self.meaning]),
                                    self.text, self.figure])
        self.network = None  # (model, data, settings)
        self.reference: dict = {}
        self.point = self.mce = self.unpruned = None
        self.norms = None
        self.slider.observe(self.update, names="value")
        self.criterion.observe(self.update, names="value")

    def set_network(self, model, data, settings: dict | None = None, reference: dict | None = None) -> dict:
        """Prune this network from now on, as `settings` (pruning_type, compression_error_metric) say; `reference` is
        the record's analysis of it (`records.recorded_analysis`)."""
        settings = settings or {"pruning_type": DEFAULT_PRUNING_TYPE, "compression_error_metric": COMPRESSION_ERROR_METRICS[0]}
        self.network, self.reference = (model, data, settings), reference or {}
        self.norms = first_layer_norms(model)[1]
        self.unpruned = self._prune(0.0, "parameter_ratio")
        self.mce = self._prune(MCE_RATIO, "mce")
        return self.update()

    def clear(self, message: str = "no network yet"):
        self.network, self.point, self.mce, self.unpruned = None, None, None, None
        self.text.value = f"<i>{html.escape(message)}</i>"
        self.figure.value = b""

    def _prune(self, amount, criterion) -> dict:
        model, data, settings = self.network
        return prune_point(model, data, amount, criterion, settings["pruning_type"], settings["compression_error_metric"])

    def update(self, *_) -> dict | None:
        """The slider's and the criterion's callback: prune at the slider's value, show the numbers and the figure."""
        criterion = self.criterion.value
        self.meaning.value = f"<small>{self.CRITERIA[criterion]}</small>"
        if self.network is None:
            return None
        self.point = self._prune(self.slider.value, criterion)
        self.text.value = self.describe()
        self.figure.value = png(norm_figure(self.norms, self.point, self.mce))
        return self.point

    def describe(self) -> str:
        p, m, u, settings = self.point, self.mce, self.unpruned, self.network[2]
        amount = f"{p['amount'] * 100:.0f} %" if p["criterion"] == "parameter_ratio" else f"r = {p['amount']:g}"
        lines = [f"<b>{p['criterion']} {amount}</b> ({settings['pruning_type']} pruning): {p['columns_removed']} of "
                 f"{p['columns']} hidden columns removed, pruning ratio {p['pruning_ratio']:.3f}. "
                 f"Pruned: <b>train {pct(p['train_acc'])}, test {pct(p['test_acc'])}</b> "
                 f"(unpruned: train {pct(u['train_acc'])}, test {pct(u['test_acc'])})."]
        kind = "sweep" if p["criterion"] == "parameter_ratio" else "mce"
        recorded = self.reference.get(kind, {}).get(amount_key(p["amount"]))
        if recorded is not None:
            share = (f"share of hidden weights removed {float(recorded['removed']):.3f}" if kind == "sweep" else
                     f"pruning ratio {float(recorded['pruning_ratio']):.3f}")
            lines.append(f"The record's analysis here: test {pct(float(recorded['test_acc']))}, {share}.")
        lines.append(f"<b>mce {MCE_RATIO:g}</b> (the paper's point: the smallest columns holding at most "
                     f"{MCE_RATIO * 100:.0f} % of each layer's squared norm): {m['fraction_removed'] * 100:.1f} % of "
                     f"hidden columns removed, pruning ratio {m['pruning_ratio']:.3f}, train {pct(m['train_acc'])}, "
                     f"test {pct(m['test_acc'])}.")
        row = self.reference.get("mce", {}).get(amount_key(MCE_RATIO))
        if row is not None:
            lines.append(f"The record's mce {MCE_RATIO:g} row: pruning ratio {float(row['pruning_ratio']):.3f}, "
                         f"test {pct(float(row['test_acc']))}.")
        return "<br>".join(lines)

    def summary(self) -> str:
        """What is shown, as plain text (for a headless run's output)."""
        return self.text.value if self.point is None else plain_text(self.describe())
