"""`htsgd analyze` and the group analysis: every run pruned, evaluated and written, none silently skipped.

Expected values are worked by hand or computed independently here (numpy forward passes, numpy
column norms, the prefix rule written out again); never taken from the code under test.
"""

import csv
import hashlib
import io
import math
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from htsgd.analysis import group_analysis
from htsgd.analysis.group_analysis import COLUMNS, AnalysisError, analyze_folder, analyze_group, noiseless_reference
from htsgd.analysis.run_analysis import analyze_run, prunable_fraction
from htsgd.analysis.runs import Run
from htsgd.record import names, run_folder, storage
from htsgd.record.trained_run import load_tensors, save_tensors, train_in_folder
from htsgd.cli import main
from htsgd.core.config import TrainConfig, make_config
from htsgd.core.data import Data, load
from htsgd.errors import UserError
from htsgd.core.models import build_model

# The 20 columns of the original analyze.py (spec section 2, "Pruning"), then the run's status and metrics.
HEADER = ("exp_key,model,dataset,lr,batch_size,width,depth,seed,iterations,convergence_accuracy,it_noise,"
          "it_noise_alpha,it_noise_scale,criterion_ratio,pruning_criterion,train_loss,train_acc,test_loss,"
          "test_acc,pruning_ratio,"
          "status,error,steps,columns_within_1pt,columns_within_1pt_of_noiseless,entries_within_1pt,"
          "entries_within_1pt_of_noiseless,rank_within_1pt,rank_within_1pt_of_noiseless,hill_alpha,block_alpha")
METRIC_COLUMNS = ["train_loss", "train_acc", "test_loss", "test_acc", "pruning_ratio", "columns_within_1pt",
                  "columns_within_1pt_of_noiseless", "entries_within_1pt", "entries_within_1pt_of_noiseless",
                  "rank_within_1pt", "rank_within_1pt_of_noiseless", "hill_alpha", "block_alpha"]
FRACTIONS = [k / 50 for k in range(51)]  # 0, 0.02, ..., 1.0
RATIOS = [i / 10 for i in range(11)]
# parameter_ratio removes floor(r * n) columns, worked by hand (0.3 * 16 = 4.8 -> 4, 0.7 * 16 = 11.2 -> 11, ...)
REMOVED_OF_16 = [0, 1, 3, 4, 6, 8, 9, 11, 12, 14, 16]
REMOVED_OF_24 = [0, 2, 4, 7, 9, 12, 14, 16, 19, 21, 24]  # 2.4, 4.8, 7.2, 9.6, 12, 14.4, 16.8, 19.2, 21.6, 24
QUIET = {"dataset": "digits", "width": 16, "lr": 0.05, "batch_size_train": 64, "eval_freq": 5,
         "convergence_accuracy": 80.0, "iterations": 200}
DEEP = {"dataset": "digits", "width": 24, "depth": 3, "lr": 0.05, "batch_size_train": 64, "eval_freq": 10,
        "convergence_accuracy": 100.0, "iterations": 30, "iterate_noise": 2, "iterate_noise_scale": 0.01,
        "iterate_noise_alpha": 1.75, "seed": 3}
ANALYSED_KEYS = ["deep", "noisy", "quiet/a", "quiet/b", "quiet/c"]


def _train(config: dict, digits, run_dir):
    train_in_folder(make_config(config), digits, run_dir, device="cpu", progress=False)


def _edit_json(path, **changes):
    storage.write_json(path, {**storage.read_json(path), **changes})


@pytest.fixture(scope="module")
def results(tmp_path_factory, digits):
    """quiet/a, quiet/b: no noise, converged (seeds 1, 7); quiet/c: quiet/b's weights as seed 5 with status cap;
    noisy: type-1 noise, otherwise quiet's flags (seed 2); deep: two hidden layers of 24, type-2 noise, cap at 30;
    blowup: deep's copy with NaN weights and status diverged."""
    root = tmp_path_factory.mktemp("results")
    _train({**QUIET, "seed": 1}, digits, root / "quiet" / "a")
    _train({**QUIET, "seed": 7}, digits, root / "quiet" / "b")
    _train({**QUIET, "seed": 2, "iterate_noise": 1, "iterate_noise_scale": 0.01, "iterate_noise_alpha": 1.75},
           digits, root / "noisy")
    _train(DEEP, digits, root / "deep")
    shutil.copytree(root / "quiet" / "b", root / "quiet" / "c")
    _edit_json(root / "quiet" / "c" / names.CONFIG, seed=5)
    _edit_json(root / "quiet" / "c" / names.METRICS, status="cap")
    shutil.copytree(root / "deep", root / "blowup")
    state = load_tensors(root / "blowup" / names.WEIGHTS)
    save_tensors(root / "blowup" / names.WEIGHTS, {k: torch.full_like(v, math.nan) for k, v in state.items()})
    _edit_json(root / "blowup" / names.METRICS, status="diverged", train_loss=math.nan, test_acc=math.nan)
    for key, status in [("quiet/a", "converged"), ("quiet/b", "converged"), ("noisy", "converged"), ("deep", "cap")]:
        assert run_folder.read_metrics(root / key)["status"] == status, key  # what the tests below rely on
    return root


@pytest.fixture(scope="module")
def mce(results):
    """`analyze_folder` with the defaults (mce, filter), the output layer ignored; the dataset loads counted."""
    before = _fingerprints(results)
    calls = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(group_analysis, "load", lambda *a, **k: calls.append(a[0]) or load(*a, **k))
        table = analyze_folder(results, "mce", ignore_last_layer=True, data_dir=results, device="cpu")
    return {"table": table, "loads": calls, "before": before, "after": _fingerprints(results)}


def _fingerprints(root):
    """Content hash and mtime of every file of every run folder (the summary is the analysis's own)."""
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] != "summary"}


def _weights(run_dir) -> dict:
    return {k: v.double().numpy() for k, v in load_tensors(run_dir / names.WEIGHTS).items()}


def _removed_by_mce(w1: np.ndarray, ratio: float, squared: bool = True) -> int:
    """Count the smallest rows whose cumulative share of the squared norm stays <= ratio (frob: its root)."""
    sq = np.sort((w1 ** 2).sum(axis=1))
    share = np.cumsum(sq) / sq.sum()
    if not squared:
        share = np.sqrt(share)
    return int((share <= ratio).sum())


def _forward(w: dict, x: torch.Tensor, y: torch.Tensor, removed: int):
    """(loss, acc %) of an FCN with the `removed` smallest-norm units of each hidden layer zeroed, in numpy."""
    h, ys = x.reshape(len(x), -1).double().numpy(), y.numpy()
    for name in sorted(k for k in w if k.startswith("hidden.")):
        layer = w[name].copy()
        layer[np.argsort((layer ** 2).sum(axis=1), kind="stable")[:removed]] = 0.0
        h = np.maximum(h @ layer.T, 0.0)
    logits = h @ w["output.weight"].T
    top = logits.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return float(np.mean(log_z - logits[np.arange(len(ys)), ys])), 100.0 * float(np.mean(logits.argmax(1) == ys))


def _prefix(points, reference):
    """The prefix rule written out: the last fraction before the first accuracy more than 1 point below."""
    kept = 0.0
    for fraction, acc in points:
        if acc < reference - 1.0 - 1e-9:
            return kept
        kept = fraction
    return kept


def _rows(table, key):
    return table[table["exp_key"] == key].reset_index(drop=True)


@pytest.fixture(scope="module")
def sweeps(results, digits):
    """Per analysed run, (share of hidden weights removed, test acc) at every swept fraction of the column
    compressor by numpy forward passes: floor(fraction * width) units of each hidden layer removed, as
    parameter_ratio does (every hidden layer has `width` units, so that is also the share removed)."""
    found = {}
    for key in ANALYSED_KEYS:
        w = _weights(results / key)
        width = len(w["hidden.0.weight"])
        found[key] = [(math.floor(f * width) / width, _forward(w, digits.test_x, digits.test_y, math.floor(f * width))[1])
                      for f in FRACTIONS]
    return found


# ---------------------------------------------------------------- a folder of runs, mce


def test_columns_are_the_originals_then_status_and_metrics(results, mce):
    path = results / "summary" / "results_filter_mce.csv"
    assert path.read_text().splitlines()[0] == HEADER
    assert list(mce["table"].columns) == HEADER.split(",") == list(COLUMNS)
    assert list(pd.read_csv(path).columns) == HEADER.split(",")


def test_every_run_has_its_rows(results, mce):
    table = pd.read_csv(results / "summary" / "results_filter_mce.csv")
    assert list(table["exp_key"]) == [k for k in ["blowup", "deep", "noisy", "quiet/a", "quiet/b", "quiet/c"]
                                      for _ in range(2)]
    assert list(table["criterion_ratio"]) == [0.0, 0.1] * 6
    assert set(table["pruning_criterion"]) == {"mce"}
    assert list(table.drop_duplicates("exp_key")["status"]) == ["diverged", "cap", "converged", "converged",
                                                               "converged", "cap"]
    assert table["error"].isna().all()


def test_stored_weights_only_read_and_dataset_loaded_once(mce):
    assert mce["after"] == mce["before"]
    assert "quiet/a/model.pt" in mce["before"]
    assert mce["loads"] == ["digits"]


def test_iterations_is_the_cap_and_steps_the_steps_taken(results, mce):
    a = _rows(mce["table"], "quiet/a")
    steps = run_folder.read_metrics(results / "quiet" / "a")["steps"]
    assert steps < 200  # converged before the cap, so the two columns differ
    assert list(a["iterations"]) == [200, 200] and list(a["steps"]) == [steps, steps]
    assert list(_rows(mce["table"], "deep")["iterations"]) == [30, 30]
    assert list(_rows(mce["table"], "deep")["steps"]) == [30, 30]
    assert (a.loc[0, ["model", "dataset", "lr", "batch_size", "width", "depth", "seed", "convergence_accuracy",
                      "it_noise", "status"]].tolist()
            == ["fcn", "digits", 0.05, 64, 16, 2, 1, 80.0, 0, "converged"])


def test_noise_free_rows_carry_zero_alpha_and_scale(mce):
    table = mce["table"]
    quiet = table[table["it_noise"] == 0]
    assert set(quiet["exp_key"]) == {"quiet/a", "quiet/b", "quiet/c"}
    # their config.json holds the defaults alpha 1.9 and scale 1.0; the original wrote 0.0 for both
    assert (quiet["it_noise_alpha"] == 0.0).all() and (quiet["it_noise_scale"] == 0.0).all()
    noisy = _rows(table, "noisy")
    assert list(noisy["it_noise"]) == [1, 1]
    assert list(noisy["it_noise_alpha"]) == [1.75, 1.75] and list(noisy["it_noise_scale"]) == [0.01, 0.01]
    assert list(_rows(table, "deep")["it_noise_alpha"]) == [1.75, 1.75]


def test_diverged_run_has_empty_metrics_never_ratio_zero(results, mce):
    blowup = _rows(mce["table"], "blowup")
    assert list(blowup["status"]) == ["diverged", "diverged"]
    assert blowup[METRIC_COLUMNS].isna().all().all()
    with open(results / "summary" / "results_filter_mce.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["exp_key"] == "blowup"]
    assert len(rows) == 2
    for row in rows:
        assert all(row[c] == "" for c in METRIC_COLUMNS), row
        assert row["status"] == "diverged" and row["criterion_ratio"] in ("0.0", "0.1") and row["steps"] == "30"
    # nor in the sweep or the column norms
    assert "blowup" not in set(pd.read_csv(results / "summary" / "sweep_filter.csv")["exp_key"])
    assert "blowup" not in set(pd.read_csv(results / "summary" / "column_norms.csv.gz")["exp_key"])


def test_mce_counts_and_accuracies_worked_independently(results, mce, digits):
    for key in ("quiet/a", "noisy"):
        w = _weights(results / key)
        removed = _removed_by_mce(w["hidden.0.weight"], 0.1)
        assert 0 < removed < 16
        rows = _rows(mce["table"], key)
        assert list(rows["pruning_ratio"]) == [0.0, removed / 16]  # one hidden layer: the share of its units
        for i, k in enumerate([0, removed]):
            test_loss, test_acc = _forward(w, digits.test_x, digits.test_y, k)
            train_loss, train_acc = _forward(w, digits.train_x, digits.train_y, k)
            assert rows.loc[i, "test_acc"] == pytest.approx(test_acc, abs=1e-9)
            assert rows.loc[i, "train_acc"] == pytest.approx(train_acc, abs=1e-9)
            assert rows.loc[i, "test_loss"] == pytest.approx(test_loss, rel=1e-5)
            assert rows.loc[i, "train_loss"] == pytest.approx(train_loss, rel=1e-5)
    # unpruned: the run's own final accuracy
    metrics = run_folder.read_metrics(results / "quiet" / "a")
    assert _rows(mce["table"], "quiet/a").loc[0, "test_acc"] == pytest.approx(metrics["test_acc"], abs=1e-9)


def test_frob_metric_gets_its_own_file(results):
    table = analyze_folder(results, "mce", "frob", ignore_last_layer=True, pruning_type="kernel",
                           data_dir=results, device="cpu")
    path = results / "summary" / "results_kernel_mce_frob.csv"
    assert path.is_file() and path.read_text().splitlines()[0] == HEADER
    assert set(table["pruning_criterion"]) == {"mce_frob"}
    w1 = _weights(results / "quiet" / "a")["hidden.0.weight"]
    removed = _removed_by_mce(w1, 0.1, squared=False)  # sqrt(share) <= 0.1, i.e. share <= 0.01
    assert list(_rows(table, "quiet/a")["pruning_ratio"]) == [0.0, removed / 16]
    assert list(pd.read_csv(path)["pruning_ratio"].fillna(-1)) == list(table["pruning_ratio"].fillna(-1))


# ---------------------------------------------------------------- parameter_ratio


def test_parameter_ratio_removes_floor_of_r_n_columns(results, digits):
    table = analyze_folder(results, "parameter_ratio", ignore_last_layer=True, data_dir=results,
                           device="cpu")
    assert (results / "summary" / "results_filter_parameter_ratio.csv").is_file()
    a = _rows(table, "quiet/a")
    assert list(a["criterion_ratio"]) == RATIOS
    assert list(a["pruning_ratio"]) == [k / 16 for k in REMOVED_OF_16]
    w = _weights(results / "quiet" / "a")
    for i, k in enumerate(REMOVED_OF_16):  # the smallest-norm units go first
        assert a.loc[i, "test_acc"] == pytest.approx(_forward(w, digits.test_x, digits.test_y, k)[1], abs=1e-9)
    # everything removed: all-zero logits, so argmax is class 0
    assert a.loc[10, "test_acc"] == pytest.approx(100 * (digits.test_y == 0).double().mean().item())
    # two hidden layers of 24: k*64 + k*24 of 24*64 + 24*24 parameters zeroed = k / 24 (output layer ignored)
    assert list(_rows(table, "deep")["pruning_ratio"]) == [k / 24 for k in REMOVED_OF_24]
    with_last = analyze_folder(results, "parameter_ratio", ignore_last_layer=False, data_dir=results,
                               device="cpu")
    assert _rows(with_last, "quiet/a").loc[10, "pruning_ratio"] == 16 * 64 / (16 * 64 + 16 * 10)


# ---------------------------------------------------------------- the equal-accuracy search


def _sweep(accs):
    return [{"compressor": "columns", "fraction": k / 50, "test_acc": acc, "removed": k / 50} for k, acc in enumerate(accs)]


@pytest.mark.parametrize("accs, reference, expected", [
    ([90.0, 89.5, 89.0, 88.9, 95.0, 95.0], 90.0, 0.04),  # 89.0 is exactly 1 below: kept; 88.9 is not
    ([90.0, 89.5, 89.0, 88.9, 87.0, 95.0], 89.5, 0.06),  # a lower reference: 88.9 is within, 87.0 not
    ([90.0, 80.0, 90.0, 90.0], 90.0, 0.0),  # a later recovery does not count
    ([90.0, 90.0, 90.0], 90.0, 0.04),  # never below: the last swept fraction
    ([90.0, 90.0, 90.0], 91.0, 0.04),  # exactly 1 below the reference throughout
    ([90.0, 90.0, 90.0], 91.5, 0.0),  # the unpruned network is itself more than 1 point below
    ([100 * 250 / 300, 100 * 247 / 300, 100 * 246 / 300], 100 * 250 / 300, 0.02),  # 1 point of 300 examples, inexact in floats
])
def test_prunable_fraction_hand_made_sweeps(accs, reference, expected):
    assert prunable_fraction(_sweep(accs), "columns", reference, tolerance=1.0) == expected
    assert prunable_fraction(_sweep(accs), "rank", reference, tolerance=1.0) == 0.0  # another compressor's


def _hand_made(tmp_path, n_class1: int):
    """A width-4 FCN whose units 0, 1 (norms 0.1, 0.2) are useless and 2, 3 (norms 3, 4) decide the class.

    Class 0 examples are (a, b, 0, 1): unit 3 gives logits (4, ~0). Class 1 examples are (a, b, 1, 0): unit 2
    gives (~0, 3). Removing units 0 and 1 changes no prediction; removing unit 2 too turns every class-1
    example into the tie (0, 0), whose argmax is class 0. So accuracy is 100 % while at most 2 of the 4 units
    go (fractions < 0.75: floor(4 f) <= 2) and 100 (100 - n_class1) / 100 % from 3 units on (f >= 0.76).
    """
    model = build_model("fcn", (4,), 2, 4, 2)
    with torch.no_grad():
        model.hidden[0].weight.copy_(torch.diag(torch.tensor([0.1, 0.2, 3.0, 4.0])))
        model.output.weight.copy_(torch.tensor([[0.05, 0.0, 0.0, 1.0], [0.0, 0.05, 1.0, 0.0]]))
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([1] * n_class1 + [0] * (100 - n_class1))
    x = torch.cat([torch.rand(100, 2, generator=g), torch.stack([y, 1 - y], 1).float()], 1)
    data = Data("digits", x, y, x.clone(), y.clone(), num_classes=2)
    run_dir = tmp_path / "hand"
    run_dir.mkdir()
    save_tensors(run_dir / names.WEIGHTS, model.state_dict())
    config = make_config({"dataset": "digits", "width": 4, "depth": 2}).to_dict()
    return Run("hand", run_dir, config, "converged"), data


# Per (n_class1, accuracy once unit 2 is gone): the share removable within 1 point by columns, entries, rank.
@pytest.mark.parametrize("n_class1, after, columns, entries, rank", [(50, 50.0, 0.5, 0.875, 0.0),
                                                                     (2, 98.0, 0.5, 0.875, 0.0),
                                                                     (1, 99.0, 1.0, 1.0, 1.0)])
def test_prunable_fraction_of_a_hand_made_network(tmp_path, n_class1, after, columns, entries, rank):
    """Columns: units 0 and 1 go for free, unit 2 is needed. Entries: the 12 zeros of the diagonal weight and the
    entries 0.1, 0.2 go for free (14 of 16, fraction <= 0.92), the 15th is 3. Rank: any cut of a 4 x 4 matrix
    keeps rank floor(2 (1 - f)) <= 1, i.e. unit 3 alone, removing half the entries or all of them."""
    run, data = _hand_made(tmp_path, n_class1)
    result = analyze_run(run, data, ["mce", "parameter_ratio"], ignore_last_layer=True, device="cpu")
    sweep = {c: [p for p in result["sweep"] if p["compressor"] == c] for c in ("columns", "entries", "rank")}
    assert all([p["fraction"] for p in points] == FRACTIONS for points in sweep.values())
    assert [p["test_acc"] for p in sweep["columns"]] == [100.0] * 38 + [after] * 13  # 0 .. 0.74, then 0.76 .. 1.0
    assert [p["removed"] for p in sweep["columns"]] == [0.0] * 13 + [0.25] * 12 + [0.5] * 13 + [0.75] * 12 + [1.0]
    assert [p["test_acc"] for p in sweep["entries"]] == [100.0] * 47 + [after] * 4  # 0 .. 0.92, then 0.94 .. 1.0
    assert [p["removed"] for p in sweep["rank"]] == [0.0] + [0.5] * 25 + [1.0] * 25
    assert [p["test_acc"] for p in sweep["rank"]] == [100.0] + [after] * 50
    assert result["norms"] == pytest.approx([0.1, 0.2, 3.0, 4.0])
    # parameter_ratio 0, 0.1, ..., 1.0 removes 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4 units
    rows = result["rows"]["parameter_ratio"]
    assert [r["pruning_ratio"] for r in rows] == [0, 0, 0, 0.25, 0.25, 0.5, 0.5, 0.5, 0.75, 0.75, 1.0]
    assert [r["test_acc"] for r in rows] == [100.0] * 8 + [after] * 3
    # mce: squared norms 0.01, 0.04, 9, 16 of 25.05; cumulative shares 0.0004, 0.002, 0.36, 1 -> 2 units at 0.1
    assert [(r["pruning_ratio"], r["test_acc"]) for r in result["rows"]["mce"]] == [(0.0, 100.0), (0.5, 100.0)]
    # Hill on the row norms 0.1, 0.2, 3, 4 with k = floor(sqrt(4)) = 2: 1 / mean(log(4 / 0.2), log(3 / 0.2)).
    # Block sum: the median of each coordinate is 0, so the rows stay; K2 = 2 only, blocks (0.1, 0.2, 0, 0)
    # and (0, 0, 3, 4): growth = mean(log sqrt(0.05), log 5) - mean(log 0.1, log 0.2, log 3, log 4).
    growth = (math.log(math.sqrt(0.05)) + math.log(5)) / 2 - math.log(0.1 * 0.2 * 3 * 4) / 4
    assert result["metrics"] == pytest.approx({"columns_within_1pt": columns, "entries_within_1pt": entries,
                                               "rank_within_1pt": rank, "hill_alpha": 2 / math.log(20 * 15),
                                               "block_alpha": math.log(2) / growth})


def test_columns_within_1pt_from_independent_forward_passes(results, mce, sweeps):
    written = pd.read_csv(results / "summary" / "sweep_filter.csv")
    written = written[written["compressor"] == "columns"]
    table = mce["table"]
    for key in ANALYSED_KEYS:
        points = sweeps[key]
        assert written[written["exp_key"] == key]["test_acc"].tolist() == pytest.approx([a for _, a in points],
                                                                                     abs=1e-9), key
        assert _rows(table, key)["columns_within_1pt"].tolist() == [_prefix(points, points[0][1])] * 2, key


def test_columns_within_1pt_of_noiseless(results, mce, sweeps):
    """The reference is the median unpruned test accuracy of the no-noise runs of the same other flags that
    converged: quiet/a and quiet/b (quiet/c, a cap, does not count); deep has no no-noise counterpart."""
    acc = {k: run_folder.read_metrics(results / k)["test_acc"] for k in ("quiet/a", "quiet/b", "quiet/c")}
    assert len({acc["quiet/a"], acc["quiet/b"]}) == 2  # so the median of 2 differs from that of 3
    reference = (acc["quiet/a"] + acc["quiet/b"]) / 2
    table = mce["table"]
    for key in ("noisy", "quiet/a", "quiet/b", "quiet/c"):
        points = sweeps[key]
        assert points[0][1] == pytest.approx(acc.get(key, points[0][1]), abs=1e-9)
        assert _rows(table, key)["columns_within_1pt_of_noiseless"].tolist() == [_prefix(points, reference)] * 2, key
    assert _rows(table, "deep")["columns_within_1pt_of_noiseless"].isna().all()
    assert _rows(table, "deep")["columns_within_1pt"].notna().all()
    # the other compressors: the same prefix rule along their own written sweeps, against the same reference
    written = pd.read_csv(results / "summary" / "sweep_filter.csv")
    for compressor in ("entries", "rank"):
        for key in ("noisy", "quiet/a"):
            rows = written[(written["exp_key"] == key) & (written["compressor"] == compressor)]
            points = list(zip(rows["removed"], rows["test_acc"]))
            assert _rows(table, key)[f"{compressor}_within_1pt_of_noiseless"].tolist() == [_prefix(points, reference)] * 2
            assert _rows(table, key)[f"{compressor}_within_1pt"].tolist() == [_prefix(points, points[0][1])] * 2


def test_noiseless_reference_pools_the_baseline_and_needs_two_converged_seeds():
    """No-noise runs that differ only in unused noise flags are one baseline, pooled; a capped seed and a run of
    other flags are not in it; a baseline of one converged seed is too few for a reference."""
    flags = make_config({"dataset": "digits", "width": 16}).to_dict()
    runs = [Run("a", Path("a"), {**flags, "seed": 1}, "converged"),
            Run("b", Path("b"), {**flags, "seed": 2, "iterate_noise_scale": 0.5}, "converged"),
            Run("c", Path("c"), {**flags, "seed": 3, "iterate_noise_alpha": 1.2,
                                         "iterate_noise_filter": True}, "converged"),
            Run("capped", Path("capped"), {**flags, "seed": 4}, "cap"),
            Run("wide", Path("wide"), {**flags, "seed": 1, "width": 32}, "converged"),
            Run("noisy", Path("noisy"), {**flags, "seed": 5, "iterate_noise": 1,
                                                 "iterate_noise_scale": 0.01}, "converged")]
    unpruned = {"a": 90.0, "b": 94.0, "c": 93.0, "capped": 10.0, "wide": 50.0, "noisy": 80.0}
    assert noiseless_reference(runs[5], runs, unpruned) == 93.0  # median of 90, 94, 93
    assert noiseless_reference(runs[1], runs, unpruned) == 93.0
    assert math.isnan(noiseless_reference(runs[4], runs, unpruned))  # one converged seed at width 32


def test_unpruned_accuracy_is_one_number(results, mce):
    """The rows at criterion value 0 define the unpruned accuracy; every compressor's sweep starts at it."""
    sweep = pd.read_csv(results / "summary" / "sweep_filter.csv")
    for key in ANALYSED_KEYS:
        [unpruned] = _rows(mce["table"], key).query("criterion_ratio == 0")["test_acc"]
        start = sweep[(sweep["exp_key"] == key) & (sweep["fraction"] == 0)]
        assert start["test_acc"].tolist() == [unpruned] * 3, key


def test_sweep_and_column_norms_files(results, mce):
    sweep = pd.read_csv(results / "summary" / "sweep_filter.csv")
    assert list(sweep.columns) == ["exp_key", "compressor", "fraction", "removed", "test_acc"]
    assert sorted(set(sweep["exp_key"])) == ANALYSED_KEYS
    for key in ANALYSED_KEYS:
        assert list(sweep[sweep["exp_key"] == key]["fraction"]) == FRACTIONS * 3
        assert list(sweep[sweep["exp_key"] == key]["compressor"]) == ["columns"] * 51 + ["entries"] * 51 + ["rank"] * 51
    norms = pd.read_csv(results / "summary" / "column_norms.csv.gz")
    assert list(norms.columns) == ["exp_key", "norm"]
    assert sorted(set(norms["exp_key"])) == ANALYSED_KEYS
    for key in ANALYSED_KEYS:
        w1 = load_tensors(results / key / names.WEIGHTS)["hidden.0.weight"]
        expected = torch.linalg.norm(w1, dim=1).tolist()
        assert len(expected) == (24 if key == "deep" else 16)
        assert list(norms[norms["exp_key"] == key]["norm"]) == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- the command line


def _copy_runs(results, dest, keys):
    for key in keys:
        shutil.copytree(results / key, dest / key)


def test_cli_defaults_to_filter_and_exits_0(results, tmp_path, capsys):
    _copy_runs(results, tmp_path, ["quiet/a", "blowup"])
    before = _fingerprints(tmp_path)
    assert main(["analyze", "--results_folder", str(tmp_path), "--ignore_last_layer", "--data_dir", str(tmp_path),
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "quiet/a" in out and "blowup" in out and "diverged" in out and "output layer excluded" in out
    assert "results_filter_mce.csv" in out
    # the file it asked for (the default pruning type, filter, as in the paper), and no other results file
    assert sorted(p.name for p in (tmp_path / "summary").iterdir()) == [
        "column_norms.csv.gz", "results_filter_mce.csv", "sweep_filter.csv"]
    assert (tmp_path / "summary" / "results_filter_mce.csv").read_text().splitlines()[0] == HEADER
    assert _fingerprints(tmp_path) == before


@pytest.fixture
def broken(results, tmp_path):
    """good (quiet/a), incomplete (config.json only) and corrupt (model.pt not a torch file)."""
    shutil.copytree(results / "quiet" / "a", tmp_path / "good")
    (tmp_path / "incomplete").mkdir()
    shutil.copy(results / "quiet" / "a" / names.CONFIG, tmp_path / "incomplete" / names.CONFIG)
    shutil.copytree(results / "quiet" / "a", tmp_path / "corrupt")
    (tmp_path / "corrupt" / names.WEIGHTS).write_bytes(b"not a torch file")
    return tmp_path


def test_unanalysable_runs_are_rows_and_an_error(broken):
    path = broken / "summary" / "results_filter_mce.csv"
    with pytest.raises(AnalysisError, match="corrupt") as raised:
        analyze_folder(broken, data_dir=broken, device="cpu", log=io.StringIO())
    assert "incomplete" in str(raised.value)
    assert path.is_file()  # written before raising
    table = pd.read_csv(path, keep_default_na=True)
    assert list(table.columns) == HEADER.split(",")
    assert list(table["exp_key"]) == ["corrupt", "corrupt", "good", "good", "incomplete", "incomplete"]
    status = dict(zip(table["exp_key"], table["status"]))
    assert status == {"corrupt": "error", "good": "converged", "incomplete": "incomplete"}
    errors = dict(zip(table["exp_key"], table["error"].fillna("")))
    assert errors["good"] == ""
    assert "metrics.json" in errors["incomplete"]
    assert "model.pt" in errors["corrupt"]
    for key in ("corrupt", "incomplete"):
        assert _rows(table, key)[METRIC_COLUMNS].isna().all().all(), key
    assert _rows(table, "good")[["test_acc", "pruning_ratio", "columns_within_1pt"]].notna().all().all()
    assert list(_rows(table, "incomplete")["steps"].isna()) == [True, True]
    assert list(_rows(table, "incomplete")["iterations"]) == [200, 200]  # its config is still read


def test_cli_exits_1_naming_the_runs(broken, capsys):
    assert main(["analyze", "--results_folder", str(broken), "--data_dir", str(broken), "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    for key in ("good", "corrupt", "incomplete"):
        assert key in captured.out  # the summary is printed all the same
    assert "results_filter_mce.csv" in captured.out
    assert "corrupt" in captured.err and "incomplete" in captured.err and "good" not in captured.err
    assert (broken / "summary" / "results_filter_mce.csv").is_file()


def test_user_errors(results, tmp_path, capsys):
    with pytest.raises(UserError, match="no such folder"):
        analyze_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no run folders"):
        analyze_folder(tmp_path / "empty")
    with pytest.raises(UserError, match="compression_error_metric = 'l1' is not allowed"):
        analyze_folder(results, "mce", "l1")
    with pytest.raises(UserError, match="itself a run folder"):
        analyze_folder(results / "deep")
    assert main(["analyze", "--results_folder", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err


# ---------------------------------------------------------------- a group: exactly the runs in runs.csv


RUN_COLUMNS = (["id"] + [f.name for f in fields(TrainConfig)]
               + ["status", "steps", "wall_time", "train_acc", "test_acc", "max_train_loss_ratio", "error"])


def _runs_row(run_id, config: dict, metrics: dict | None, status=None, error=""):
    row = {"id": run_id, **config, "status": status or metrics["status"], "error": error}
    if metrics is not None:
        row.update({k: metrics[k] for k in ("steps", "wall_time", "train_acc", "test_acc", "max_train_loss_ratio")})
    return row


def test_analyze_group_reads_exactly_runs_csv(results, tmp_path):
    group = tmp_path / "grp"
    for run_id, source in [("r1", "quiet/a"), ("r2", "noisy"), ("r3", "deep"), ("r4", "quiet/b")]:
        shutil.copytree(results / source, group / run_id)
    cfg = {k: storage.read_json(group / k / names.CONFIG) for k in ("r1", "r2", "r4")}
    met = {k: run_folder.read_metrics(group / k) for k in ("r1", "r2", "r4")}
    assert cfg["r4"]["lr"] == 0.05
    rows = [_runs_row("r1", cfg["r1"], met["r1"]),
            _runs_row("r2", cfg["r2"], met["r2"]),
            _runs_row("r4", {**cfg["r4"], "lr": 0.07}, met["r4"]),  # the params file now says lr 0.07
            _runs_row("r5", {**cfg["r1"], "seed": 11}, None, "failed", "RuntimeError: boom"),
            _runs_row("r6", {**cfg["r1"], "seed": 12}, None, "pending")]
    with open(group / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, RUN_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    before = _fingerprints(group)
    with pytest.raises(AnalysisError, match="r4"):
        analyze_group(group, data_dir=tmp_path, device="cpu", log=io.StringIO())
    assert _fingerprints(group) == before  # run folders and runs.csv only read
    for criterion, n in (("mce", 2), ("parameter_ratio", 11)):
        table = pd.read_csv(group / "summary" / f"results_filter_{criterion}.csv")
        assert list(table.columns) == HEADER.split(",")
        assert list(table["exp_key"]) == [k for k in ("r1", "r2", "r4", "r5", "r6") for _ in range(n)]  # not r3
        status = dict(zip(table["exp_key"], table["status"]))
        assert status == {"r1": "converged", "r2": "converged", "r4": "error", "r5": "failed", "r6": "pending"}
        errors = dict(zip(table["exp_key"], table["error"].fillna("")))
        assert "lr" in errors["r4"] and "0.05" in errors["r4"] and "0.07" in errors["r4"]
        assert errors["r5"] == "RuntimeError: boom"
        for key in ("r4", "r5", "r6"):
            assert _rows(table, key)[METRIC_COLUMNS].isna().all().all(), key
        for key in ("r1", "r2"):
            assert _rows(table, key)[["test_acc", "pruning_ratio", "columns_within_1pt"]].notna().all().all()
        # r2 (noisy)'s baseline has one converged seed, r1 (r4 is an error): too few for a reference
        assert _rows(table, "r2")["columns_within_1pt_of_noiseless"].isna().all()
    assert set(pd.read_csv(group / "summary" / "sweep_filter.csv")["exp_key"]) == {"r1", "r2"}
    assert set(pd.read_csv(group / "summary" / "column_norms.csv.gz")["exp_key"]) == {"r1", "r2"}
