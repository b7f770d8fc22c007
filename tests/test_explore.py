"""The explore notebook's logic (`htsgd.reader.explore`): its widget callbacks compute the analysis' numbers."""

import html
import io
import json
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from htsgd.analysis.group_analysis import analyze_runs
from htsgd.analysis.run_analysis import analyze_run
from htsgd.analysis.runs import find_runs
from htsgd.core.config import ConfigError, make_config
from htsgd.core.evaluate import evaluate
from htsgd.core.prune import PRUNING_CRITERIA, prune_model
from htsgd.core.train import train
from htsgd.reader import explore
from htsgd.reader.explore import live_trainer, networks, records
from htsgd.record import names
from htsgd.record.trained_run import train_in_folder

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"
BASE = {"dataset": "digits", "width": 48, "lr": 0.05, "batch_size_train": 256, "eval_freq": 5,
        "convergence_accuracy": 90.0, "iterations": 300, "iterate_noise_alpha": 1.75}
RUNS = {"noise0_seed1": {"iterate_noise": 0, "seed": 1},
        "noise1_sigma0.01_seed1": {"iterate_noise": 1, "iterate_noise_scale": 0.01, "seed": 1}}
SMALL = {"device": "cpu", "data_dir": "data"}


@pytest.fixture(scope="module")
def record(tmp_path_factory, digits):
    """A tiny group trained with weights (results/tiny), analysed as `htsgd analyze` does; and each run's analysis."""
    results = tmp_path_factory.mktemp("explore") / "results"
    group = results / "tiny"
    rows = []
    for run_id, values in RUNS.items():
        config = make_config({**BASE, **values})
        metrics = train_in_folder(config, digits, group / run_id, "cpu", progress=False)["metrics"]
        rows.append({"id": run_id, **config.to_dict(), "status": metrics["status"], "error": ""})
    pd.DataFrame(rows).to_csv(group / names.RUNS_CSV, index=False)
    runs = find_runs(group)
    analyze_runs(group, runs, PRUNING_CRITERIA, pruning_type="filter", device="cpu", log=io.StringIO())
    analysed = {run.exp_key: analyze_run(run, digits, PRUNING_CRITERIA, pruning_type="filter") for run in runs}
    return results, analysed


def record_explorer(results: Path, **kwargs) -> explore.RecordExplorer:
    """The explorer of a test record, whose params files (none unless a test writes one) lie beside it."""
    return explore.RecordExplorer(results, params_dir=results.parent / "params", **SMALL, **kwargs)


def files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def test_slider_gives_the_sweep_accuracy(record):
    """Picking a run in the dropdowns, then a fraction on the slider: exactly the analysis' sweep at that fraction."""
    results, analysed = record
    explorer = record_explorer(results)
    assert list(explorer.group.options) == ["tiny"]
    explorer.group.value = "tiny"  # the dropdown's callback fills the runs and shows the first
    assert explorer.loaded.run_id == next(iter(RUNS)) and explorer.loaded.source == "weights"
    for run_id in RUNS:
        explorer.run.value = run_id
        assert explorer.loaded.run_id == run_id
        assert explorer.settings == {"pruning_type": "filter", "compression_error_metric": "fro_squared"}
        sweep = {point["fraction"]: point for point in analysed[run_id]["sweep"] if point["compressor"] == "columns"}
        for fraction in (0.1, 0.0, 0.5, 0.9, 1.0):
            explorer.prune.slider.value = fraction
            point = explorer.prune.point
            removed = point["columns_removed"] / point["columns"]  # one hidden layer: the share of its weights
            assert (point["test_acc"], removed) == (sweep[fraction]["test_acc"], sweep[fraction]["removed"])
            written = explorer.prune.reference["sweep"][records.amount_key(fraction)]  # summary/sweep_filter.csv
            assert (written["test_acc"], written["removed"]) == (point["test_acc"], removed)
            assert f"test {point['test_acc']:.2f} %" in explorer.prune.text.value
            assert bytes(explorer.prune.figure.value).startswith(b"\x89PNG")


def test_mce_point_is_the_analysis_row(record):
    """The mce point shown beside the slider, and the slider under the mce criterion, are the analysis' rows."""
    results, analysed = record
    explorer = record_explorer(results)
    for run_id in RUNS:
        explorer.select("tiny", run_id)
        rows = {row["criterion_ratio"]: row for row in analysed[run_id]["rows"]["mce"]}
        keys = ("train_loss", "train_acc", "test_loss", "test_acc", "pruning_ratio")
        assert {k: explorer.prune.mce[k] for k in keys} == {k: rows[0.1][k] for k in keys}
        explorer.prune.criterion.value = "mce"
        for ratio in (0.0, 0.1):
            explorer.prune.slider.value = ratio
            assert {k: explorer.prune.point[k] for k in keys} == {k: rows[ratio][k] for k in keys}
        explorer.prune.criterion.value = "parameter_ratio"
        written = explorer.prune.reference["mce"][0.1]  # summary/results_filter_mce.csv
        assert written["test_acc"] == explorer.prune.mce["test_acc"]
        assert f"{explorer.prune.mce['fraction_removed'] * 100:.1f} % of hidden columns" in explorer.prune.text.value


def test_analysis_settings_come_from_the_params_file(record, tmp_path):
    """The group's params file says how it was analysed (here the frob metric, whose CSV the summary lacks): the mce
    point is pruned so; no params file or no `analysis:` key gives the defaults; a bad value is named, not raised."""
    results = tmp_path / "results"
    shutil.copytree(record[0], results)
    params = tmp_path / "params"
    params.mkdir()
    (params / "tiny.yaml").write_text("seeds: [1]\nanalysis:\n  compression_error_metric: frob\n")
    explorer = record_explorer(results)
    network = explorer.select("tiny", "noise0_seed1")
    assert explorer.settings == {"pruning_type": "filter", "compression_error_metric": "frob"}
    assert "filter, frob" in explorer.message.value and explorer.prune.reference["mce"] == {}
    pruned = prune_model(network.model, 0.1, "mce", "frob", "filter")
    assert explorer.prune.mce["test_acc"] == evaluate(pruned.model, network.data.test_x, network.data.test_y)[1]
    assert explorer.prune.mce["pruning_ratio"] == pruned.pruning_ratio(True)
    (params / "tiny.yaml").write_text("seeds: [1]\n")
    assert records.analysis_settings(params, "tiny") == records.analysis_settings(tmp_path, "tiny") == \
        {"pruning_type": "filter", "compression_error_metric": "fro_squared"}
    (params / "tiny.yaml").write_text("analysis: {compression_error_metric: l1}\n")
    assert explorer.select("tiny", "noise0_seed1") is None and explorer.loaded is None
    assert explorer.error == (f"{params / 'tiny.yaml'}: analysis.compression_error_metric = 'l1' is not allowed; "
                              "use one of fro_squared, frob")
    assert html.escape(explorer.error) in explorer.message.value and explorer.prune.point is None


def test_run_without_weights_is_retrained_on_digits(record, tmp_path):
    """A digits run without model.pt is retrained in memory, recorded and retrained accuracy both shown; nothing written."""
    results, analysed = record
    shutil.copytree(results, tmp_path / "results")
    group = tmp_path / "results" / "tiny"
    for run_id in RUNS:
        (group / run_id / names.WEIGHTS).unlink()
    before = files(group)
    explorer = record_explorer(tmp_path / "results")
    for run_id in RUNS:
        network = explorer.select("tiny", run_id, fraction=0.5)
        recorded = json.loads((group / run_id / names.METRICS).read_text())
        assert network.source == "retrained" and network.recorded == recorded
        # the same machine as the record: the same numbers, noisy run included
        assert (network.retrained["steps"], network.retrained["test_acc"]) == (recorded["steps"], recorded["test_acc"])
        message = explorer.message.value
        assert "retrained here" in message and "chaotic" in message and "same kind of machine" in message
        assert f"recorded ({names.METRICS}): {recorded['status']} after {recorded['steps']} steps" in message
        assert f"retrained: {network.retrained['status']} after {network.retrained['steps']} steps" in message
        assert f"test {recorded['test_acc']:.2f} %" in message
        assert explorer.progress.value == recorded["steps"]
        assert explorer.prune.point["test_acc"] == analysed[run_id]["sweep"][25]["test_acc"]  # fraction 0.5
        assert "retrained: " in explorer.summary()
        assert explorer.select("tiny", run_id) is network  # kept in memory, not trained again
    assert files(group) == before


def test_run_without_weights_elsewhere_says_how(tmp_path):
    """Not digits and no model.pt: no retraining, no data loaded; the message says how to get the weights."""
    group = tmp_path / "results" / "mnist_group"
    run_dir = group / "noise0_seed1"
    run_dir.mkdir(parents=True)
    config = make_config({"dataset": "mnist", "width": 2000}).to_dict()
    (run_dir / names.CONFIG).write_text(json.dumps(config))
    (run_dir / names.METRICS).write_text(json.dumps({"status": "converged", "steps": 900, "wall_time": 9.0,
                                                     "train_loss": 0.1, "train_acc": 95.0, "test_loss": 0.2,
                                                     "test_acc": 94.0}))
    pd.DataFrame([{"id": "noise0_seed1", **config, "status": "converged", "error": ""}]).to_csv(group / names.RUNS_CSV, index=False)
    explorer = explore.RecordExplorer(tmp_path / "results", data_dir=tmp_path / "nodata", device="cpu",
                                      params_dir=tmp_path / "params")
    assert explorer.select() is None and explorer.loaded is None
    assert "htsgd run params/mnist_group.yaml" in explorer.error and "keep no weights" in explorer.error
    assert html.escape(explorer.error) in explorer.message.value
    assert not any(key[0] == "mnist" for key in networks._data_cache)
    assert explorer.prune.point is None


SETTINGS_ERRORS = [({"iterate_noise": 3, "iterate_noise_alpha": 2.0}, "degenerates at alpha = 2"),
                   ({"iterate_noise_scale": -0.5}, "iterate_noise_scale = -0.5 is not allowed"),
                   ({"width": 0}, "width = 0 is not allowed")]


@pytest.mark.parametrize("change, text", SETTINGS_ERRORS)
def test_invalid_settings_give_the_config_error(change, text):
    """Invalid settings: the Train button shows make_config's message, as `htsgd train` words it, and trains nothing."""
    live = explore.LiveTrainer(**SMALL)
    for key, value in change.items():
        live.inputs[key].value = value
    live.train_button.click()
    assert live.result is None and not live.running and live._thread is None
    with pytest.raises(ConfigError) as command_line:  # what `htsgd train` raises for the same values
        make_config(live.values(), where="command line")
    assert text in live.error
    assert live.error == str(command_line.value).replace("command line", live_trainer.WHERE, 1)
    assert html.escape(live.error) in live.status.value
    live.inputs["iterate_noise"].value, live.inputs["iterate_noise_alpha"].value = 1, 1.5
    live.inputs["iterate_noise_scale"].value, live.inputs["width"].value = 0.01, 16
    assert live.error is None and "ready" in live.status.value  # corrected settings clear the message


def test_stop_button_stops_training():
    """Train runs in a background thread; Stop ends it at the next evaluation with status stopped, then it is pruned."""
    live = explore.LiveTrainer(**SMALL, width=32, iterations=100_000, convergence_accuracy=100.0)
    live.train_button.click()
    assert live.running and live.train_button.disabled and not live.stop_button.disabled
    deadline = time.monotonic() + 300
    while len(live.history) < 3 and live.running and time.monotonic() < deadline:
        time.sleep(0.02)
    live.stop_button.click()
    live.wait(300)
    assert not live.running and live.error is None
    metrics = live.result["metrics"]
    assert metrics["status"] == "stopped" and metrics["steps"] < 100_000
    assert live.result["history"][-1]["step"] == metrics["steps"] - 1 == live.history[-1]["step"]
    assert not live.train_button.disabled and live.stop_button.disabled
    assert live.prune.point is not None and bytes(live.curve.value).startswith(b"\x89PNG")


def test_live_training_then_pruning(digits):
    """A configuration trained live gives train()'s own result, and the slider prunes it as the analysis would."""
    settings = {"width": 32, "iterations": 60, "iterate_noise": 2, "iterate_noise_scale": 0.01}
    live = explore.LiveTrainer(fraction=0.3, **SMALL, **settings)
    config = live.start(background=False)
    assert config == make_config({**live_trainer.LIVE_DEFAULTS, **settings})
    plain = train(config, digits, device="cpu", progress=False)
    assert live.result["history"] == plain["history"] == live.history
    assert {k: v for k, v in live.result["metrics"].items() if k not in ("wall_time", "steps_per_second")} == \
        {k: v for k, v in plain["metrics"].items() if k not in ("wall_time", "steps_per_second")}
    assert live.progress.value == live.progress.max == 60
    pruned = prune_model(live.result["model"], 0.3, "parameter_ratio", "fro_squared", "filter")
    assert live.prune.point["test_acc"] == evaluate(pruned.model, digits.test_x, digits.test_y)[1]
    assert live.summary().startswith(f"live training: {plain['metrics']['status']} after 60 steps")


def test_on_evaluation_hook(digits):
    """train()'s hook sees every history row; returning True stops training with status stopped."""
    config = make_config({**BASE, "iterations": 23, "convergence_accuracy": 100.0})
    seen = []
    result = train(config, digits, device="cpu", progress=False, on_evaluation=seen.append)
    assert seen == result["history"] and [row["step"] for row in seen] == [0, 5, 10, 15, 20, 22]
    plain = train(config, digits, device="cpu", progress=False)
    assert plain["history"] == result["history"] and plain["metrics"]["status"] == result["metrics"]["status"] == "cap"
    stopped = train(config, digits, device="cpu", progress=False, on_evaluation=lambda row: row["step"] >= 10)
    assert (stopped["metrics"]["status"], stopped["metrics"]["steps"]) == ("stopped", 11)
    assert stopped["history"] == plain["history"][:3]


def test_lists_the_committed_record():
    """The committed groups, their runs in runs.csv's order, and the analysis settings of their params files."""
    results = ROOT / "results"
    assert {"demo", "digits_calibration"} <= set(records.list_groups(results))
    table = pd.read_csv(results / "demo" / names.RUNS_CSV, dtype={"id": str})
    assert [run_id for run_id, _ in records.list_runs(results / "demo")] == list(table["id"])
    settings = records.analysis_settings(ROOT / "params", "demo")
    assert settings == {"pruning_type": "filter", "compression_error_metric": "fro_squared"}
    assert records.analysis_settings(ROOT / "params", "digits_calibration") == settings  # given in the file
    recorded = records.recorded_analysis(results / "demo", table["id"][0], settings)
    assert len(recorded["sweep"]) == 51 and set(recorded["mce"]) == {0.0, 0.1}


def test_notebook_is_committed_clean():
    """No outputs, no execution counts, exactly one parameters cell, the record found from notebooks/."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c["execution_count"] is None and c["outputs"] == [] for c in code)
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and 'results_dir = "../results"' in "".join(tagged[0]["source"])


def test_no_lower_layer_imports_the_reader():
    """`reader` is the top layer: nothing in core, record, analysis, report or pipeline imports it."""
    for layer in ("core", "record", "analysis", "report", "pipeline"):
        for path in (ROOT / "htsgd" / layer).rglob("*.py"):
            assert not re.search(r"^\s*(from|import)\s+(htsgd\.|\.\.)reader", path.read_text(), re.M), path


@pytest.mark.slow
@pytest.mark.usefixtures("htsgd_kernel")
def test_notebook_runs_headless(tmp_path):
    """papermill runs the notebook from notebooks/ on the demo record as a clone has it (no weights, even where
    `make demo` wrote them): it retrains the demo's first run, prunes it, and trains the live settings, without an
    error and without writing into the record."""
    import papermill

    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "demo", results / "demo", ignore=shutil.ignore_patterns(names.WEIGHTS, names.CHECKPOINT))
    run_dir = results / "demo" / records.list_runs(results / "demo")[0][0]
    before = files(run_dir)
    out = tmp_path / "explore.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), parameters={"results_dir": str(results)}, kernel_name="htsgd",
                               cwd=str(NOTEBOOK.parent), progress_bar=False)
    outputs = [o for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = "".join("".join(o["text"]) for o in outputs if o["output_type"] == "stream" and o["name"] == "stdout")
    assert "retrained here" in text and "recorded (metrics.json)" in text and "The record's analysis here" in text
    assert "live training: " in text
    assert files(run_dir) == before
