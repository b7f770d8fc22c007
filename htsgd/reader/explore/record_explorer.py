"""The explore notebook's first view: pick a group and a run of the record in dropdowns, get its network (its
model.pt, or retrained in memory from its config.json) and prune it as the group's analysis pruned it."""

import html
from pathlib import Path

import ipywidgets as widgets

from ...core.train import default_device
from ...errors import UserError
from ...record import names, run_folder
from .networks import RunNetwork, load_network
from .prune_view import PruneView
from .pruning import snap
from .records import analysis_settings, list_groups, list_runs, recorded_analysis
from .text import metrics_text, plain_text

CHAOS_NOTE = ("Noisy runs are chaotic: one rounding difference early on grows into another trajectory, so a "
              "retrained run agrees with the record only on the same kind of machine (the same device and "
              "library versions as the record's provenance.json); elsewhere it is another sample of the same "
              "experiment, close in accuracy but not equal.")


class RecordExplorer:
    """Pick a group and a run of the record, get its network (model.pt, or retrained from config.json), prune it.

    The group's analysis settings come from its params file in `params_dir` (`<group>.yaml`, `analysis:`)."""

    def __init__(self, results_dir="../results", fraction: float = 0.5, data_dir="../data", device=None,
                 params_dir="../params"):
        self.results_dir, self.params_dir = Path(results_dir), Path(params_dir)
        self.data_dir, self.device = data_dir, device or default_device()
        self.networks: dict = {}  # (group, run) -> RunNetwork: retrained ones are kept in memory, never written
        self.loaded: RunNetwork | None = None
        self.settings: dict | None = None  # the loaded run's group's analysis settings
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
        """The dropdowns' callback: read how the group was analysed, get the run's network (retraining it if need be)
        and hand both to the pruning view."""
        self.loaded, self.settings, self.error = None, None, None
        self.prune.clear("loading ...")
        group_dir = self.results_dir / group
        key = (group, run_id)
        try:
            settings = analysis_settings(self.params_dir, group)
            if key not in self.networks:
                self.networks[key] = self._load(group_dir, run_id)
        except UserError as err:
            self.error = str(err)
            self.message.value = f"<b>{html.escape(self.error)}</b>"
            self.prune.clear("nothing to prune")
            return None
        finally:
            self.progress.layout.visibility = "hidden"
        self.loaded, self.settings = self.networks[key], settings
        self.message.value = self.describe()
        self.prune.set_network(self.loaded.model, self.loaded.data, settings,
                               recorded_analysis(group_dir, run_id, settings))
        return self.loaded

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
        n, s = self.loaded, self.settings
        settings = f"pruned as the group's analysis prunes: {s['pruning_type']}, {s['compression_error_metric']}"
        if n.source == "weights":
            return (f"<b>{n.group_dir.name}/{n.run_id}</b>: loaded from its {names.WEIGHTS}; recorded: "
                    f"{metrics_text(n.recorded)} ({settings}).")
        return (f"<b>{n.group_dir.name}/{n.run_id}</b>: the committed record keeps no weights, so this run was "
                f"<b>retrained here</b> from its {names.CONFIG} on {html.escape(str(self.device))} "
                f"({n.retrained['wall_time']:.1f} s; kept in memory, nothing written).<br>"
                f"recorded ({names.METRICS}): {metrics_text(n.recorded)}<br>"
                f"retrained: {metrics_text(n.retrained)}<br><small>{html.escape(CHAOS_NOTE)}</small><br>"
                f"<small>{settings}.</small>")

    def summary(self) -> str:
        """What is shown, as plain text (for a headless run's output)."""
        if self.loaded is None:
            return self.error or "nothing selected"
        return plain_text(self.describe()) + "\n" + self.prune.summary()
