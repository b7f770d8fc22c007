import json
import shlex

import pytest

from htsgd.cli import main

SEED_EXAMPLE = ("--iterate_noise 0 --iterate_noise_scale 0.003 --iterate_noise_alpha 1.75 --model fcn --width 2000 "
                "--depth 2 --dataset digits --lr 0.05 --batch_size_train 256 --seed 1 --eval_freq 10 "
                "--convergence_accuracy 99 --no_progress")


def test_seed_example_command_trains_and_refuses_to_overwrite(tmp_path, capsys):
    args = ["train", *shlex.split(SEED_EXAMPLE), "--save_dir", str(tmp_path / "run")]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "converged" and metrics["train_acc"] >= 99.0
    assert main(args) == 2
    assert "already holds a finished run; pass --overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


def test_foreign_folder_is_not_touched(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["train", "--dataset", "digits", "--save_dir", str(tmp_path), "--no_progress"]) == 2
    assert "holds no htsgd run" in capsys.readouterr().err and (tmp_path / "notes.txt").read_text() == "mine"
