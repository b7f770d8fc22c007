import csv
import dataclasses

import pytest
import torch

import htsgd.core.train as train_module
from htsgd.core.config import make_config
from htsgd.core.evaluate import evaluate
from htsgd.core.models import build_model
from htsgd.core.train import HISTORY_COLUMNS, epoch_order, train
from htsgd.errors import UserError
from htsgd.record import storage
from htsgd.record.digests import TRAIN, python_digest
from htsgd.record.trained_run import load_tensors, train_in_folder


def config(**overrides):
    base = dict(dataset="digits", width=128, lr=0.05, batch_size_train=256, eval_freq=10,
                convergence_accuracy=90.0, seed=1, iterations=2000)
    return make_config({**base, **overrides})


def test_converges_and_writes_its_folder(digits, tmp_path):
    result = train_in_folder(config(), digits, tmp_path / "run", progress=False, command="htsgd train (test)")
    m = result["metrics"]
    assert m["status"] == "converged" and m["train_acc"] >= 90.0 and m["steps"] > 1
    steps = [row["step"] for row in result["history"]]
    assert steps[:-1] == list(range(0, steps[-1], 10)) or steps == list(range(0, steps[-1] + 1, 10))
    assert steps[-1] == m["steps"] - 1
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json", "history.csv", "metrics.json", "model.pt",
                                                                      "provenance.json"]
    assert storage.read_json(tmp_path / "run" / "config.json") == config().to_dict()
    rows = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    assert list(rows[0]) == HISTORY_COLUMNS and len(rows) == len(steps)
    saved = storage.read_json(tmp_path / "run" / "metrics.json")
    assert sorted(saved) == sorted(["status", "steps", "wall_time", "steps_per_second", *HISTORY_COLUMNS[1:],
                                    "initial_train_loss", "max_train_loss_ratio", "convergence_step"])
    assert saved["convergence_step"] == steps[-1]
    losses = [float(row["train_loss"]) for row in rows]
    assert saved["max_train_loss_ratio"] == pytest.approx(max(losses) / saved["initial_train_loss"])
    origin = storage.read_json(tmp_path / "run" / "provenance.json")
    assert origin["command"] == "htsgd train (test)" and origin["code_digest"] == python_digest(TRAIN)
    weights = load_tensors(tmp_path / "run" / "model.pt")
    assert torch.equal(weights["output.weight"], result["model"].output.weight.detach())


def test_cap_stops_after_the_last_step_and_evaluates_it(digits):
    result = train(config(iterations=7, eval_freq=3, convergence_accuracy=100.0), digits, progress=False)
    assert result["metrics"]["status"] == "cap" and result["metrics"]["steps"] == 7
    assert [row["step"] for row in result["history"]] == [0, 3, 6]
    result = train(config(iterations=5, eval_freq=3, convergence_accuracy=100.0), digits, progress=False)
    assert [row["step"] for row in result["history"]] == [0, 3, 4]  # final evaluation recorded at stop


def test_train_to_cap_takes_every_step_and_is_completed(digits):
    stopping = train(config(iterations=400), digits, progress=False)["metrics"]
    assert stopping["status"] == "converged" and stopping["steps"] < 400
    capped = train(config(iterations=400, train_to_cap=True), digits, progress=False)
    m = capped["metrics"]
    assert m["status"] == "completed" and m["steps"] == 400 and m["train_acc"] >= 90.0
    # the same trajectory up to the step the stopping run ended at; then it goes on
    assert m["convergence_step"] == stopping["convergence_step"] == stopping["steps"] - 1
    assert [row["step"] for row in capped["history"]][-1] == 399


def test_noise_hook_runs_after_every_step_but_the_last(digits, monkeypatch):
    calls = []
    monkeypatch.setattr(train_module, "make_noise", lambda cfg, model, gen: lambda: calls.append(1))
    result = train(config(iterations=9, convergence_accuracy=100.0), digits, progress=False)
    assert result["metrics"]["steps"] == 9 and len(calls) == 8
    calls.clear()
    result = train(config(), digits, progress=False)
    assert result["metrics"]["status"] == "converged" and len(calls) == result["metrics"]["steps"] - 1


def test_divergence_is_a_recorded_outcome(digits, tmp_path):
    huge = dataclasses.replace(digits, train_x=digits.train_x * 1e12)  # the first update overflows to inf
    result = train_in_folder(config(lr=1.0, eval_freq=1), huge, tmp_path, progress=False)
    assert result["metrics"]["status"] == "diverged"
    assert storage.read_json(tmp_path / "metrics.json")["status"] == "diverged"


def test_divergence_between_evaluations_is_caught_at_the_next_loss_check(digits):
    huge = dataclasses.replace(digits, train_x=digits.train_x * 1e5)  # the loss turns NaN within a few steps
    result = train(config(lr=0.1, eval_freq=1000), huge, progress=False)
    assert result["metrics"]["status"] == "diverged" and result["metrics"]["steps"] == train_module.CHECK_EVERY
    assert [row["step"] for row in result["history"]] == [0, train_module.CHECK_EVERY - 1]


def test_stop_test_judges_the_last_evaluation_convergence_first():
    reached, short = {"train_acc": 90.0}, {"train_acc": 10.0}
    stop = train_module.stop_test
    assert stop(config(iterations=10), 10, reached, 12.5) == "converged"  # converging at the cap is converging
    assert stop(config(iterations=10, train_to_cap=True), 10, reached, 12.5) == "completed"
    assert stop(config(iterations=10), 10, short, 12.5) == "cap"
    assert stop(config(iterations=10), 9, short, 12.5) is None
    assert stop(config(iterations=train_module.NOT_LEARNING_AFTER), train_module.NOT_LEARNING_AFTER, short,
                12.5) == "not_learning"


def test_not_learning_stops_near_chance(digits, monkeypatch):
    monkeypatch.setattr(train_module, "NOT_LEARNING_AFTER", 20)
    blank = dataclasses.replace(digits, train_x=torch.zeros_like(digits.train_x), test_x=torch.zeros_like(digits.test_x))
    result = train(config(eval_freq=5), blank, progress=False)  # constant logits: accuracy = one class's share
    assert result["metrics"]["status"] == "not_learning" and result["metrics"]["steps"] == 20
    assert train_module.chance_ceiling(2) == 53.0 and train_module.chance_ceiling(10) == 12.5


def test_same_seed_same_run_other_seed_other_run(digits):
    a, b = (train(config(iterations=30, convergence_accuracy=100.0), digits, progress=False) for _ in range(2))
    c = train(config(iterations=30, convergence_accuracy=100.0, seed=2), digits, progress=False)
    assert a["history"] == b["history"]
    assert all(torch.equal(p, q) for p, q in zip(a["model"].parameters(), b["model"].parameters()))
    assert a["history"] != c["history"]


def test_epoch_order_is_a_fresh_permutation_per_epoch():
    first, second = epoch_order(0, 50, 3, "cpu"), epoch_order(1, 50, 3, "cpu")
    assert sorted(first.tolist()) == list(range(50)) == sorted(second.tolist())
    assert not torch.equal(first, second) and torch.equal(first, epoch_order(0, 50, 3, "cpu"))


def test_interrupted_run_resumes_to_the_same_result(digits, tmp_path, interrupted):
    cfg = config(iterations=40, eval_freq=5, convergence_accuracy=100.0)
    whole = train_in_folder(cfg, digits, tmp_path / "whole", progress=False)
    with interrupted(25):
        train_in_folder(cfg, digits, tmp_path / "cut", progress=False, checkpoint_every=10)
    assert (tmp_path / "cut" / "checkpoint.pt").is_file() and not (tmp_path / "cut" / "metrics.json").exists()
    resumed = train_in_folder(cfg, digits, tmp_path / "cut", progress=False, checkpoint_every=10)
    assert resumed["history"] == whole["history"]
    assert resumed["metrics"]["initial_train_loss"] == whole["metrics"]["initial_train_loss"]
    assert all(torch.equal(p, q) for p, q in zip(whole["model"].parameters(), resumed["model"].parameters()))
    assert not (tmp_path / "cut" / "checkpoint.pt").exists()


def test_the_training_loop_writes_nothing_and_hands_checkpoints_to_its_caller(digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    states = []
    train(config(iterations=30, convergence_accuracy=100.0), digits, progress=False, on_checkpoint=states.append,
          checkpoint_every=10)
    assert [s["step"] for s in states] == [10, 20] and not list(tmp_path.iterdir())


def test_max_train_loss_ratio():
    history = [{"train_loss": 2.0}, {"train_loss": 30.0}, {"train_loss": 0.1}]
    assert train_module.max_train_loss_ratio(history, 3.0) == 10.0
    assert train_module.max_train_loss_ratio(history + [{"train_loss": float("nan")}], 3.0) == float("inf")


def test_the_initial_loss_is_the_networks_before_any_update(digits):
    """The history's step-0 row comes after the first SGD step; the ratio's denominator must not."""
    cfg = config(iterations=3, lr=0.5, convergence_accuracy=100.0)
    result = train(cfg, digits, progress=False)
    torch.manual_seed(cfg.seed)  # the same initial network as train builds
    initial = build_model(cfg.model, digits.input_shape, digits.num_classes, cfg.width, cfg.depth)
    expected = evaluate(initial, digits.train_x, digits.train_y)[0]
    assert result["metrics"]["initial_train_loss"] == pytest.approx(expected, rel=1e-6)
    assert result["metrics"]["initial_train_loss"] != pytest.approx(result["history"][0]["train_loss"], rel=1e-3)
    losses = [row["train_loss"] for row in result["history"]]
    assert result["metrics"]["max_train_loss_ratio"] == pytest.approx(max(losses) / expected, rel=1e-6)


def test_a_folder_of_another_configuration_is_refused(digits, tmp_path):
    train_in_folder(config(iterations=5), digits, tmp_path, progress=False)
    with pytest.raises(UserError, match=r"different configuration \(lr: 0.05 -> 0.1\)"):
        train_in_folder(config(iterations=5, lr=0.1), digits, tmp_path, progress=False)
