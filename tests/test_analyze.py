"""`htsgd analyze`: every finished run in a folder pruned, evaluated and written to one CSV."""

import hashlib
import math
import shutil

import pandas as pd
import pytest
import torch

from htsgd import analyze, storage
from htsgd.cli import main
from htsgd.config import make_config
from htsgd.data import load
from htsgd.errors import UserError
from htsgd.models import build_model
from htsgd.prune import prune_model
from htsgd.train import train

# spec section 2, "Pruning", plus the run's status
SPEC_COLUMNS = ("exp_key,model,dataset,lr,batch_size,width,depth,seed,iterations,convergence_accuracy,it_noise,"
                "it_noise_alpha,it_noise_scale,criterion_ratio,pruning_criterion,train_loss,train_acc,test_loss,"
                "test_acc,pruning_ratio,status")
TINY = {"dataset": "digits", "lr": 0.05, "batch_size_train": 64, "eval_freq": 10, "convergence_accuracy": 100.0,
        "iterations": 30}


@pytest.fixture(scope="module")
def results(tmp_path_factory, digits):
    """DIR/group/a (one hidden layer), DIR/b (two), DIR/blowup (diverged: NaN weights), DIR/c (incomplete)."""
    root = tmp_path_factory.mktemp("results")
    train(make_config({**TINY, "width": 16, "seed": 1}), digits, run_dir=root / "group" / "a", progress=False)
    train(make_config({**TINY, "width": 24, "depth": 3, "seed": 2}), digits, run_dir=root / "b", progress=False)
    shutil.copytree(root / "b", root / "blowup")
    state = storage.load_torch(root / "blowup" / storage.WEIGHTS)
    storage.save_torch(root / "blowup" / storage.WEIGHTS, {k: torch.full_like(v, math.nan) for k, v in state.items()})
    metrics = storage.read_json(root / "blowup" / storage.METRICS)
    storage.write_json(root / "blowup" / storage.METRICS, {**metrics, "status": "diverged", "test_acc": math.nan})
    (root / "c").mkdir()
    shutil.copy(root / "b" / storage.CONFIG, root / "c" / storage.CONFIG)
    return root


def _hashes(root):
    return {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in sorted(root.rglob("model.pt"))}


def test_find_runs(results):
    complete, incomplete = analyze.find_runs(results)
    assert [p.relative_to(results).as_posix() for p in complete] == ["b", "blowup", "group/a"]
    assert incomplete == [results / "c"]


def test_mce_csv(results, capsys):
    before = _hashes(results)
    table = analyze.analyze_folder(results, "mce", ignore_last_layer=True, data_dir=results)
    assert _hashes(results) == before, "the stored weights are only read"
    path = results / "summary" / "results_filter_mce.csv"
    assert table.attrs["path"] == str(path)
    assert path.read_text().splitlines()[0] == SPEC_COLUMNS
    assert list(table.columns) == SPEC_COLUMNS.split(",")
    err = capsys.readouterr().err
    assert f"incomplete: no metrics.json): {results / 'c'}" in err  # the incomplete run is listed and skipped

    csv = pd.read_csv(path)
    assert len(csv) == 6 and list(csv["exp_key"]) == ["b", "b", "blowup", "blowup", "group/a", "group/a"]
    assert list(csv["criterion_ratio"]) == [0.0, 0.1] * 3
    assert set(csv["pruning_criterion"]) == {"mce"}
    a = csv[csv["exp_key"] == "group/a"].reset_index(drop=True)
    metrics = storage.read_json(results / "group" / "a" / storage.METRICS)
    assert list(a["iterations"]) == [metrics["steps"]] * 2 == [30, 30]
    assert (a.loc[0, ["model", "dataset", "lr", "batch_size", "width", "depth", "seed", "convergence_accuracy",
                      "it_noise", "it_noise_alpha", "it_noise_scale", "status"]].tolist()
            == ["fcn", "digits", 0.05, 64, 16, 2, 1, 100.0, 0, 1.9, 1.0, metrics["status"]])
    # criterion 0.0 removes no column of a trained network: the run's own final accuracy
    assert a.loc[0, "pruning_ratio"] == 0.0
    assert a.loc[0, "test_acc"] == pytest.approx(metrics["test_acc"])
    assert a.loc[0, "train_acc"] == pytest.approx(metrics["train_acc"])
    # at 0.1: the fraction of the 16 hidden units pruned, as prune_model finds
    model = build_model("fcn", (1, 8, 8), 10, 16, 2)
    model.load_state_dict(storage.load_torch(results / "group" / "a" / storage.WEIGHTS))
    expected = prune_model(model, 0.1)
    assert a.loc[1, "pruning_ratio"] == expected.layers[0].columns_removed / 16 == expected.pruning_ratio(True) > 0
    nan = csv[csv["exp_key"] == "blowup"]
    assert list(nan["status"]) == ["diverged", "diverged"]  # a diverged run still gets its rows
    assert ",NaN," in path.read_text()
    assert nan["train_loss"].isna().all() and (nan["pruning_ratio"] == 0).all()


def test_parameter_ratio_and_last_layer(results, digits):
    table = analyze.analyze_folder(results, "parameter_ratio", ignore_last_layer=True, data_dir=results)
    assert (results / "summary" / "results_filter_parameter_ratio.csv").is_file()
    a = table[table["exp_key"] == "group/a"].reset_index(drop=True)
    assert list(a["criterion_ratio"]) == [i / 10 for i in range(11)]
    assert list(a["pruning_ratio"]) == [math.floor(round(i / 10 * 16, 9)) / 16 for i in range(11)]
    assert a.loc[10, "test_acc"] == pytest.approx(100 * (digits.test_y == 0).float().mean().item())  # all-zero logits
    with_last = analyze.analyze_folder(results, "parameter_ratio", ignore_last_layer=False, data_dir=results)
    a_last = with_last[with_last["exp_key"] == "group/a"].reset_index(drop=True)
    assert a_last.loc[10, "pruning_ratio"] == 16 * 64 / (16 * 64 + 16 * 10)


def test_frob_gets_its_own_file(results):
    table = analyze.analyze_folder(results, "mce", "frob", data_dir=results)
    assert set(table["pruning_criterion"]) == {"mce_frob"}
    assert (results / "summary" / "results_kernel_mce_frob.csv").exists() is False
    assert (results / "summary" / "results_filter_mce_frob.csv").is_file()


def test_dataset_loaded_once(results, monkeypatch):
    calls = []
    monkeypatch.setattr(analyze, "load", lambda *a, **k: calls.append(a) or load(*a, **k))
    analyze.analyze_folder(results, data_dir=results)
    assert len(calls) == 1


def test_cli(results, capsys):
    before = _hashes(results)
    assert main(["analyze", "--results_folder", str(results), "--pruning_criterion", "mce", "--ignore_last_layer",
                 "--data_dir", str(results), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "group/a" in out and "results_filter_mce.csv" in out and "output layer excluded" in out
    assert _hashes(results) == before


def test_unreadable_weights_are_skipped(results, tmp_path, capsys):
    shutil.copytree(results / "group" / "a", tmp_path / "good")
    shutil.copytree(results / "group" / "a", tmp_path / "corrupt")
    (tmp_path / "corrupt" / storage.WEIGHTS).write_bytes(b"not a torch file")
    table = analyze.analyze_folder(tmp_path, data_dir=tmp_path)
    assert set(table["exp_key"]) == {"good"}
    assert f"not a plain tensor file; only tensors are loaded, never pickled code): {tmp_path / 'corrupt'}" \
        in capsys.readouterr().err


def test_user_errors(results, tmp_path, capsys):
    with pytest.raises(UserError, match="no such folder"):
        analyze.analyze_folder(tmp_path / "missing")
    (tmp_path / "only_incomplete").mkdir()
    shutil.copy(results / "b" / storage.CONFIG, tmp_path / "only_incomplete" / storage.CONFIG)
    with pytest.raises(UserError, match="no finished runs"):
        analyze.analyze_folder(tmp_path)
    with pytest.raises(UserError, match="compression_error_metric = 'l1' is not allowed"):
        analyze.analyze_folder(results, "mce", "l1")
    with pytest.raises(UserError, match="itself a run folder"):
        analyze.analyze_folder(results / "b")
    assert main(["analyze", "--results_folder", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
