"""The explore notebook's second view: train a configuration live, then prune it.

Noise type, alpha, sigma, width, learning rate and seed, on digits by default, validated by `make_config` as
`htsgd train` validates them. Train runs in a background thread with a live curve, through `train`'s
`on_evaluation` hook, whose answer is the Stop button.
"""

import html
import threading
import time

import ipywidgets as widgets

from ...core.config import NOISE_TYPES, TrainConfig, make_config
from ...core.train import default_device, train
from ...errors import UserError
from .figures import curve_figure, png
from .networks import get_data
from .prune_view import PruneView
from .text import metrics_text

WHERE = "explore settings"  # how a ConfigError names the live settings (`htsgd train` says "command line")
REDRAW_SECONDS = 1.0  # at most one live curve per this many seconds (a PNG takes about 0.2 s)
NOISE_LABELS = {0: "0: none", 1: "1: alpha-stable scalar per unit", 2: "2: i.i.d. alpha-stable entries",
                3: "3: elliptic alpha-stable per unit"}
# The live trainer's settings: the demo group's (params/demo.yaml), type 1 noise.
LIVE_DEFAULTS = {"dataset": "digits", "model": "fcn", "depth": 2, "iterate_noise": 1, "iterate_noise_alpha": 1.9,
                 "iterate_noise_scale": 0.02, "width": 500, "lr": 0.05, "seed": 1, "batch_size_train": 256,
                 "eval_freq": 10, "convergence_accuracy": 99.0, "iterations": 2000}
LIVE_WIDGETS = ("iterate_noise", "iterate_noise_alpha", "iterate_noise_scale", "width", "lr", "seed", "iterations")


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
            self.status.value = (f"<b>{metrics_text(result['metrics'])}</b> in {result['metrics']['wall_time']:.1f} s "
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
        return f"live training: {metrics_text(self.result['metrics'])}\n{self.prune.summary()}"
