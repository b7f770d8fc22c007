"""The explore notebook's logic: prune a finished run of the record, or train a configuration live.

Two views, each a class that builds its ipywidgets and whose callbacks are plain methods, so a
test calls them without a browser (setting a widget's value runs its callback, as a click would):

* `RecordExplorer`: a group (a folder of `results/` with runs.csv) and one of its runs, picked in
  dropdowns. The run's network comes from its model.pt; the committed records keep no weights, so
  a digits run without one is retrained in memory from its config.json (seconds), its accuracy
  shown beside the recorded one; for any other dataset it says how to get the weights.
* `LiveTrainer`: noise type, alpha, sigma, width, learning rate and seed, on digits by default,
  validated by `make_config` as `htsgd train` validates them. Train runs in a background thread
  with a live curve, through `train`'s `on_evaluation` hook, whose answer is the stop button.

Both end in a `PruneView`: a slider sets the amount removed under the criterion chosen, by the
analysis' own calls (`prune_model`, then `evaluate` on the full train and test sets), so a
fraction gives exactly the accuracy of the group's sweep (`parameter_ratio`, the columns of every
hidden layer smallest norm first, the group's pruning type) and the paper's point (`mce` at 0.1)
exactly its row. Nothing here writes a file: retrained networks stay in memory. The widgets are
standard ipywidgets 8 ones and figures are PNGs in Image widgets, drawn with Agg off pyplot (so a
background thread may draw them): the same in JupyterLab and classic Notebook.
"""

import html
import io
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..analysis.run_analysis import SWEEP_FRACTIONS
from ..core.config import (COMPRESSION_ERROR_METRICS, FIELD_TYPES, NOISE_TYPES, PRUNING_TYPES, TrainConfig,
                           make_config)
from ..core.data import load
from ..core.evaluate import evaluate
from ..core.models import hidden_layers
from ..core.prune import DEFAULT_PRUNING_TYPE, MCE_RATIO, PRUNING_CRITERIA, column_sq_norms, prune_model
from ..core.train import default_device, train
from ..errors import UserError
from ..record import names, run_folder
from ..record.trained_run import load_model
from ..report.figures import norm_ccdf

RETRAINABLE_DATASETS = ("digits",)  # small enough to retrain a run while the reader waits
WHERE = "explore settings"  # how a ConfigError names the live settings (`htsgd train` says "command line")
REDRAW_SECONDS = 1.0  # at most one live curve per this many seconds (a PNG takes about 0.2 s)
NOISE_LABELS = {0: "0: none", 1: "1: alpha-stable scalar per unit", 2: "2: i.i.d. alpha-stable entries",
                3: "3: elliptic alpha-stable per unit"}
# The live trainer's settings: the demo group's (params/demo.yaml), type 1 noise.
LIVE_DEFAULTS = {"dataset": "digits", "model": "fcn", "depth": 2, "iterate_noise": 1, "iterate_noise_alpha": 1.9,
                 "iterate_noise_scale": 0.02, "width": 500, "lr": 0.05, "seed": 1, "batch_size_train": 256,
                 "eval_freq": 10, "convergence_accuracy": 99.0, "iterations": 2000}
LIVE_WIDGETS = ("iterate_noise", "iterate_noise_alpha", "iterate_noise_scale", "width", "lr", "seed", "iterations")
CHAOS_NOTE = ("Noisy runs are chaotic: one rounding difference early on grows into another trajectory, so a "
              "retrained run agrees with the record only on the same kind of machine (the same device and "
              "library versions as the record's provenance.json); elsewhere it is another sample of the same "
              "experiment, close in accuracy but not equal.")
_data_cache: dict = {}


class WeightsUnavailable(UserError):
    """A run's model.pt is not here and retraining it would not take seconds; the message says how to get it."""


# ---------------------------------------------------------------- the record

def list_groups(results_dir) -> list[str]:
    """The groups under `results_dir`: its folders that hold runs.csv, sorted."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / names.RUNS_CSV).is_file())


def list_runs(group_dir) -> list[tuple[str, str]]:
    """(id, status) of every run in the group's runs.csv, in its order."""
    table = pd.read_csv(Path(group_dir) / names.RUNS_CSV, dtype={"id": str, "status": str}, keep_default_na=False)
    return list(zip(table["id"], table["status"]))


def analysis_settings(group_dir) -> dict:
    """The group's analysis settings, from the summary files its analysis wrote (the defaults without one)."""
    summary = Path(group_dir) / names.SUMMARY
    kind = next((t for t in PRUNING_TYPES if (summary / names.sweep_csv(t)).is_file()), PRUNING_TYPES[0])
    metric = next((m for m in COMPRESSION_ERROR_METRICS if (summary / names.results_csv(kind, "mce", m)).is_file()),
                  COMPRESSION_ERROR_METRICS[0])
    return {"pruning_type": kind, "compression_error_metric": metric}


def recorded_analysis(group_dir, run_id: str, settings: dict) -> dict:
    """The group analysis' numbers for one run: {"sweep": {fraction: row of the column compressor's sweep},
    "mce": {ratio: row}} (empty without);
    look a value up with `amount_key`."""
    summary = Path(group_dir) / names.SUMMARY
    found = {"sweep": {}, "mce": {}}
    for kind, path, column in (
            ("sweep", summary / names.sweep_csv(settings["pruning_type"]), "fraction"),
            ("mce", summary / names.results_csv(settings["pruning_type"], "mce", settings["compression_error_metric"]),
             "criterion_ratio")):
        if path.is_file():
            table = pd.read_csv(path, dtype={"exp_key": str, "error": str})
            rows = table[(table["exp_key"] == run_id) & table["test_acc"].notna()]
            if kind == "sweep":  # the slider prunes columns: the column compressor's sweep
                rows = rows[rows["compressor"] == "columns"]
            rows = rows.to_dict("records")
            found[kind] = {amount_key(row[column]): row for row in rows}
    return found


def amount_key(amount: float) -> float:
    """A criterion value as a lookup key: 0.1 read from a CSV and 5 / 50 are the same key."""
    return round(float(amount), 9)


def can_retrain(config: TrainConfig) -> bool:
    """Whether retraining the run takes seconds: digits (1,437 training images) at any width of the records."""
    return config.dataset in RETRAINABLE_DATASETS


def no_weights_message(group_dir, run_id: str, config: TrainConfig) -> str:
    group = Path(group_dir)
    return (f"{group.name}/{run_id} has no {names.WEIGHTS}: committed records keep no weights, and retraining a "
            f"{config.dataset} run (width {config.width}, up to {config.iterations} steps) takes far longer than "
            f"a reader waits. To get the weights, run `htsgd run params/{group.name}.yaml` on a machine with the "
            f"{config.dataset} data (it writes {names.WEIGHTS} into every run folder), then pick the run again.")


def get_data(dataset: str, data_dir="data", device="cpu", train_size: int = 0):
    """A dataset, loaded once per (name, folder, device, training subset) and kept."""
    key = (dataset, str(data_dir), str(device), train_size)
    if key not in _data_cache:
        _data_cache[key] = load(dataset, data_dir, device, train_size)
    return _data_cache[key]


@dataclass
class RunNetwork:
    """A run's trained network and where it came from: its model.pt (`weights`) or retrained here (`retrained`)."""
    group_dir: Path
    run_id: str
    config: TrainConfig
    model: object
    data: object
    source: str
    recorded: dict  # the record's metrics.json
    retrained: dict | None = None  # train's metrics when retrained here
    settings: dict = field(default_factory=dict)  # the group's analysis settings


def load_network(group_dir, run_id: str, data_dir="data", device="cpu", on_evaluation=None) -> RunNetwork:
    """The network of a finished run: loaded from model.pt, else retrained from config.json when that takes
    seconds (`on_evaluation` sees each history row, e.g. for a progress bar); never writes into the record.

    Raises UserError (why, and what to do) for a run that did not finish or diverged, and
    WeightsUnavailable for a run without weights that would take long to retrain.
    """
    group_dir = Path(group_dir)
    run_dir = group_dir / run_id
    saved = run_folder.read_config(run_dir)
    if saved is None:
        raise UserError(f"{group_dir.name}/{run_id} has no {names.CONFIG}: it has not run (see `htsgd status`)")
    # Only the training fields: older records also hold `checkpoint_every`, which changes no result.
    config = make_config({k: v for k, v in saved.items() if k in FIELD_TYPES}, where=str(run_dir / names.CONFIG))
    if not run_folder.is_complete(run_dir):
        raise UserError(f"{group_dir.name}/{run_id} has no {names.METRICS}: its training did not finish")
    recorded = run_folder.read_metrics(run_dir)
    if recorded["status"] not in names.ANALYSED:
        raise UserError(f"{group_dir.name}/{run_id} {recorded['status']}: its weights are not finite, so the "
                        "analysis does not prune it")
    settings = analysis_settings(group_dir)
    has_weights = (run_dir / names.WEIGHTS).is_file()
    if not has_weights and not can_retrain(config):
        raise WeightsUnavailable(no_weights_message(group_dir, run_id, config))
    data = get_data(config.dataset, data_dir, device, config.train_size)
    if has_weights:
        model = load_model(run_dir, data.input_shape, data.num_classes, device)
        return RunNetwork(group_dir, run_id, config, model, data, "weights", recorded, None, settings)
    result = train(config, data, device=device, progress=False, on_evaluation=on_evaluation)
    return RunNetwork(group_dir, run_id, config, result["model"], data, "retrained", recorded, result["metrics"],
                      settings)


# ---------------------------------------------------------------- pruning, as the analysis prunes

def prune_point(model, data, amount: float, criterion: str = "parameter_ratio", pruning_type: str = DEFAULT_PRUNING_TYPE,
                compression_error_metric: str = "fro_squared", ignore_last_layer: bool = True) -> dict:
    """Prune `model` by `criterion` at `amount` and evaluate it on the full train and test sets, by the calls of
    `analyze_run` (so the numbers are the analysis' own); with the columns removed, over all hidden layers
    and in the first one."""
    pruned = prune_model(model, amount, criterion, compression_error_metric, pruning_type)
    train_loss, train_acc = evaluate(pruned.model, data.train_x, data.train_y)
    test_loss, test_acc = evaluate(pruned.model, data.test_x, data.test_y)
    hidden = [layer for layer in pruned.layers if layer.role == "hidden"]
    removed, columns = sum(layer.columns_removed for layer in hidden), sum(layer.columns for layer in hidden)
    return {"criterion": criterion, "amount": amount, "train_loss": train_loss, "train_acc": train_acc,
            "test_loss": test_loss, "test_acc": test_acc, "pruning_ratio": pruned.pruning_ratio(ignore_last_layer),
            "columns_removed": removed, "columns": columns, "fraction_removed": removed / columns if columns else 0.0,
            "first_layer": hidden[0].name, "first_layer_removed": hidden[0].columns_removed,
            "first_layer_columns": hidden[0].columns}


def first_layer_norms(model) -> np.ndarray:
    """The column norms of the first hidden layer (one per hidden unit of an FCN), as the analysis takes them."""
    layer = hidden_layers(model)[0][1]
    return column_sq_norms(layer.weight, "filter").sqrt().cpu().numpy()


def norm_figure(norms, point: dict, mce: dict | None = None) -> Figure:
    """The complementary CDF of the first layer's column norms on log-log axes, the removed columns in grey
    and the cut marked (dashed: the mce point's cut)."""
    values, share = norm_ccdf(norms)
    dropped = len(norms) - len(values)  # zero norms: the first removed, not drawable on log axes
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    k = max(0, point["first_layer_removed"] - dropped)
    ax.loglog(values[k:], share[k:], ".", markersize=3, color="tab:blue", label="kept")
    if k:
        ax.loglog(values[:k], share[:k], ".", markersize=3, color="0.65", label="removed")
    for cut, style, label in ((point, "-", "cut"), (mce, "--", f"mce {MCE_RATIO:g} cut")):
        if cut is not None and 0 < cut["first_layer_removed"] - dropped < len(values):
            i = cut["first_layer_removed"] - dropped
            ax.axvline(float(np.sqrt(values[i - 1] * values[i])), color="tab:red", ls=style, lw=1, label=label)
    ax.set(xlabel=f"column norm ({point['first_layer']})", ylabel="fraction of columns with norm ≥ x",
           title=f"{point['first_layer_removed']} of {point['first_layer_columns']} columns removed")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def curve_figure(history: list[dict], iterations: int | None = None) -> Figure:
    """Train loss and train/test accuracy against the step, so far."""
    fig = Figure(figsize=(9, 3))
    loss_ax, acc_ax = fig.subplots(1, 2)
    steps = [row["step"] for row in history]
    loss_ax.plot(steps, [row["train_loss"] for row in history], color="tab:blue")
    loss_ax.set(xlabel="step", ylabel="train loss", yscale="log")
    for split in ("train", "test"):
        acc_ax.plot(steps, [row[f"{split}_acc"] for row in history], label=split)
    acc_ax.set(xlabel="step", ylabel="accuracy (%)")
    acc_ax.legend(loc="lower right")
    if iterations:
        for ax in (loss_ax, acc_ax):
            ax.set_xlim(0, max(iterations, 1))
    fig.tight_layout()
    return fig


def png(fig: Figure, dpi: int = 80) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()


def _pct(value) -> str:
    return f"{value:.2f} %"


# ---------------------------------------------------------------- the widgets

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
        """Prune this network from now on; `reference` is the record's analysis of it (`recorded_analysis`)."""
        settings = settings or {"pruning_type": PRUNING_TYPES[0], "compression_error_metric": COMPRESSION_ERROR_METRICS[0]}
        self.network, self.reference = (model, data, settings), reference or {}
        self.norms = first_layer_norms(model)
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
                 f"Pruned: <b>train {_pct(p['train_acc'])}, test {_pct(p['test_acc'])}</b> "
                 f"(unpruned: train {_pct(u['train_acc'])}, test {_pct(u['test_acc'])})."]
        kind = "sweep" if p["criterion"] == "parameter_ratio" else "mce"
        recorded = self.reference.get(kind, {}).get(amount_key(p["amount"]))
        if recorded is not None:
            share = (f"share of hidden weights removed {float(recorded['removed']):.3f}" if kind == "sweep" else
                     f"pruning ratio {float(recorded['pruning_ratio']):.3f}")
            lines.append(f"The record's analysis here: test {_pct(float(recorded['test_acc']))}, {share}.")
        lines.append(f"<b>mce {MCE_RATIO:g}</b> (the paper's point: the smallest columns holding at most "
                     f"{MCE_RATIO * 100:.0f} % of each layer's squared norm): {m['fraction_removed'] * 100:.1f} % of hidden columns "
                     f"removed, pruning ratio {m['pruning_ratio']:.3f}, train {_pct(m['train_acc'])}, "
                     f"test {_pct(m['test_acc'])}.")
        row = self.reference.get("mce", {}).get(amount_key(MCE_RATIO))
        if row is not None:
            lines.append(f"The record's mce {MCE_RATIO:g} row: pruning ratio {float(row['pruning_ratio']):.3f}, "
                         f"test {_pct(float(row['test_acc']))}.")
        return "<br>".join(lines)

    def summary(self) -> str:
        if self.point is None:
            return self.text.value
        return html.unescape(self.describe().replace("<br>", "\n").replace("<b>", "").replace("</b>", ""))


def snap(fraction: float) -> float:
    """The sweep fraction nearest `fraction`."""
    return min(SWEEP_FRACTIONS, key=lambda f: abs(f - fraction))


def _metrics_text(m: dict) -> str:
    return f"{m['status']} after {m['steps']} steps, train {_pct(m['train_acc'])}, test {_pct(m['test_acc'])}"


class RecordExplorer:
    """Pick a group and a run of the record, get its network (model.pt, or retrained from config.json), prune it."""

    def __init__(self, results_dir="../results", fraction: float = 0.5, data_dir="../data", device=None):
        self.results_dir, self.data_dir, self.device = Path(results_dir), data_dir, device or default_device()
        self.networks: dict = {}  # (group, run) -> RunNetwork: retrained ones are kept in memory, never written
        self.loaded: RunNetwork | None = None
        self.error: str | None = None
        self._quiet = False
        groups = list_groups(self.results_dir)
        self.group = widgets.Dropdown(options=groups, value=None, description="group")
        self.run = widgets.Dropdown(options=[], description="run", layout=widgets.Layout(width="480px"))
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="retraining",
                                            layout=widgets.Layout(visibility="hidden"))
        self.message = widgets.HTML("" if groups else f"<i>no groups (folders with {names.RUNS_CSV}) under "
                                                      f"{html.escape(str(self.results_dir))}</i>")
        self.prune = PruneView(fraction)
        self.widget = widgets.VBox([widgets.HBox([self.group, self.run]), self.progress, self.message,
                                    self.prune.widget])
        self.group.observe(self._group_changed, names="value")
        self.run.observe(self._run_changed, names="value")

    def select(self, group: str | None = None, run: str | None = None, fraction: float | None = None):
        """Show `run` of `group` (None: the first group, the group's first run), as picking them in the dropdowns does."""
        groups = list(self.group.options)
        if not groups:
            return None
        group = group if group in groups else groups[0]
        self._quiet = True
        try:
            self.group.value = group
            self._fill_runs(group)
            ids = [value for _, value in self.run.options]
            if not ids:
                self.message.value = f"<i>{html.escape(group)}: no runs in its {names.RUNS_CSV}</i>"
                return None
            self.run.value = run if run in ids else ids[0]
            if fraction is not None:
                self.prune.slider.value = snap(fraction)
        finally:
            self._quiet = False
        return self.show(self.group.value, self.run.value)

    def _fill_runs(self, group):
        self.run.options = [(f"{run_id} ({status})", run_id) for run_id, status in list_runs(self.results_dir / group)]

    def _group_changed(self, change):
        if self._quiet or change["new"] is None:
            return
        self._quiet = True
        try:
            self._fill_runs(change["new"])
            self.run.value = self.run.options[0][1] if self.run.options else None
        finally:
            self._quiet = False
        self.show(self.group.value, self.run.value)

    def _run_changed(self, change):
        if not self._quiet and change["new"] is not None:
            self.show(self.group.value, change["new"])

    def show(self, group: str, run_id: str) -> RunNetwork | None:
        """The dropdowns' callback: get the run's network (retraining it if need be) and hand it to the pruning view."""
        self.loaded, self.error = None, None
        self.prune.clear("loading ...")
        group_dir = self.results_dir / group
        key = (group, run_id)
        try:
            if key not in self.networks:
                self.networks[key] = self._load(group_dir, run_id)
        except UserError as err:
            self.error = str(err)
            self.message.value = f"<b>{html.escape(self.error)}</b>"
            self.prune.clear("nothing to prune")
            return None
        finally:
            self.progress.layout.visibility = "hidden"
        self.loaded = network = self.networks[key]
        self.message.value = self.describe()
        self.prune.set_network(network.model, network.data, network.settings,
                               recorded_analysis(group_dir, run_id, network.settings))
        return network

    def _load(self, group_dir, run_id) -> RunNetwork:
        metrics_path = group_dir / run_id / names.METRICS
        steps = run_folder.read_metrics(group_dir / run_id)["steps"] if metrics_path.is_file() else 1
        self.progress.max, self.progress.value = max(steps, 1), 0
        if not (group_dir / run_id / names.WEIGHTS).is_file():
            self.message.value = (f"No {names.WEIGHTS} in the record: retraining {html.escape(run_id)} here from its "
                                  f"{names.CONFIG} ...")

        def advance(row):
            self.progress.layout.visibility = "visible"
            self.progress.value = min(row["step"] + 1, self.progress.max)
            return False

        return load_network(group_dir, run_id, self.data_dir, self.device, on_evaluation=advance)

    def describe(self) -> str:
        n = self.loaded
        settings = f"pruned as the group's analysis prunes: {n.settings['pruning_type']}, {n.settings['compression_error_metric']}"
        if n.source == "weights":
            return (f"<b>{n.group_dir.name}/{n.run_id}</b>: loaded from its {names.WEIGHTS}; recorded: "
                    f"{_metrics_text(n.recorded)} ({settings}).")
        return (f"<b>{n.group_dir.name}/{n.run_id}</b>: the committed record keeps no weights, so this run was "
                f"<b>retrained here</b> from its {names.CONFIG} on {html.escape(str(self.device))} "
                f"({n.retrained['wall_time']:.1f} s; kept in memory, nothing written).<br>"
                f"recorded ({names.METRICS}): {_metrics_text(n.recorded)}<br>"
                f"retrained: {_metrics_text(n.retrained)}<br><small>{html.escape(CHAOS_NOTE)}</small><br>"
                f"<small>{settings}.</small>")

    def summary(self) -> str:
        """What is shown, as plain text (for a headless run's output)."""
        if self.loaded is None:
            return self.error or "nothing selected"
        text = self.describe().replace("<br>", "\n").replace("<b>", "").replace("</b>", "")
        text = text.replace("<small>", "").replace("</small>", "")
        return html.unescape(text) + "\n" + self.prune.summary()


class LiveTrainer:
    """Settings, a Train and a Stop button, a live curve; the finished network in a `PruneView`.

    `fixed` are the settings that have no widget (the demo group's by default: digits, an FCN of one
    hidden layer, batch 256, ...). `start` validates with `make_config` (a message, not a traceback,
    for invalid settings) and trains in a background thread, so that the Stop button's click is
    processed while it runs; `start(background=False)` trains in the caller (a headless run).
    """

    def __init__(self, fraction: float = 0.5, data_dir="../data", device=None, **settings):
        values = {**LIVE_DEFAULTS, **settings}
        self.fixed = {k: v for k, v in values.items() if k not in LIVE_WIDGETS}
        self.data_dir, self.device = data_dir, device or default_device()
        self.inputs = {
            "iterate_noise": widgets.Dropdown(options=[(NOISE_LABELS[t], t) for t in NOISE_TYPES],
                                              value=values["iterate_noise"], description="noise type"),
            "iterate_noise_alpha": widgets.FloatSlider(value=values["iterate_noise_alpha"], min=0.1, max=2.0,
                                                       step=0.05, description="α", continuous_update=False),
            "iterate_noise_scale": widgets.FloatText(value=values["iterate_noise_scale"], description="σ"),
            "width": widgets.IntText(value=values["width"], description="width"),
            "lr": widgets.FloatText(value=values["lr"], description="learning rate",
                                    style={"description_width": "initial"}),
            "seed": widgets.IntText(value=values["seed"], description="seed"),
            "iterations": widgets.IntText(value=values["iterations"], description="max steps"),
        }
        self.train_button = widgets.Button(description="Train", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.status = widgets.HTML()
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="step")
        self.curve = widgets.Image(format="png")
        self.prune = PruneView(fraction)
        inputs = list(self.inputs.values())
        self.widget = widgets.VBox([widgets.HBox(inputs[:3]), widgets.HBox(inputs[3:]),
                                    widgets.HBox([self.train_button, self.stop_button, self.progress]),
                                    self.status, self.curve, self.prune.widget])
        self.history: list[dict] = []
        self.result = None
        self.error: str | None = None
        self._stop, self._thread, self._busy, self._drawn = threading.Event(), None, False, 0.0
        self.train_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        for widget in inputs:
            widget.observe(self.check, names="value")
        self.check()

    def values(self) -> dict:
        return {**self.fixed, **{key: widget.value for key, widget in self.inputs.items()}}

    def check(self, *_) -> TrainConfig | None:
        """Validate the settings as `htsgd train` does; show the ConfigError's message when they are invalid."""
        try:
            config = make_config(self.values(), where=WHERE)
        except UserError as err:
            self.error = str(err)
            self.status.value = f"<b style='color:#b00'>{html.escape(self.error)}</b>"
            return None
        self.error = None
        if not self._busy:
            self.status.value = (f"<i>ready: {config.dataset}, {config.model} width {config.width}, "
                                 f"noise type {config.iterate_noise}; click Train</i>")
        return config

    @property
    def running(self) -> bool:
        return self._busy

    def start(self, background: bool = True) -> TrainConfig | None:
        """The Train button's callback: validate, then train (in a thread unless `background` is False)."""
        if self._busy:
            self.status.value = "<i>a training is running: stop it first</i>"
            return None
        config = self.check()
        if config is None:
            return None
        self._stop.clear()
        self._busy, self.history, self.result, self._drawn = True, [], None, 0.0
        self.train_button.disabled, self.stop_button.disabled = True, False
        self.progress.max, self.progress.value = config.iterations, 0
        self.prune.clear("pruned once training has finished")
        self.status.value = f"<i>training {html.escape(str(config))} on {html.escape(str(self.device))} ...</i>"
        if background:
            self._thread = threading.Thread(target=self._run, args=(config,), daemon=True)
            self._thread.start()
        else:
            self._run(config)
            if self.result is None:
                raise UserError(self.error)
        return config

    def stop(self):
        """The Stop button's callback: training stops at its next evaluation, with status "stopped"."""
        self._stop.set()

    def wait(self, timeout: float | None = None):
        """Block until a background training has finished (for tests and scripts)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _on_evaluation(self, row: dict) -> bool:
        self.history.append(row)
        self.progress.value = min(row["step"] + 1, self.progress.max)
        now = time.perf_counter()
        if now - self._drawn >= REDRAW_SECONDS:
            self._drawn = now
            self.curve.value = png(curve_figure(self.history, self.progress.max))
        return self._stop.is_set()

    def _run(self, config: TrainConfig):
        try:
            data = get_data(config.dataset, self.data_dir, self.device, config.train_size)
            result = train(config, data, device=self.device, progress=False, on_evaluation=self._on_evaluation)
            self.curve.value = png(curve_figure(result["history"], config.iterations))
            self.status.value = (f"<b>{_metrics_text(result['metrics'])}</b> in {result['metrics']['wall_time']:.1f} s "
                                 f"(nothing written); the network is pruned below")
            self.prune.set_network(result["model"], data)
            self.result = result
        except Exception as err:  # noqa: BLE001 -- shown in the view: a background thread's traceback would be lost
            self.error = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
            self.status.value = f"<b style='color:#b00'>{html.escape(self.error)}</b>"
        finally:
            self._busy = False
            self.train_button.disabled, self.stop_button.disabled = False, True

    def summary(self) -> str:
        if self.result is None:
            return self.error or "not trained"
        return f"live training: {_metrics_text(self.result['metrics'])}\n{self.prune.summary()}"

