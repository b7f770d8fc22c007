import json
import shlex

from htsgd.cli import main

SEED_EXAMPLE = ("--iterate_noise 0 --iterate_noise_scale 0.003 --iterate_noise_alpha 1.75 --model fcn --width 2000 "
                "--depth 2 --dataset digits --lr 0.05 --batch_size_train 256 --seed 1 --eval_freq 10 "
                "--convergence_accuracy 99 --no_progress")
TINY = ["--dataset", "digits", "--width", "16", "--iterations", "5", "--no_progress"]


def files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


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
    assert main(["train", *TINY, "--save_dir", str(tmp_path)]) == 2
    assert "is not a run folder (it holds notes.txt)" in capsys.readouterr().err
    assert files(tmp_path) == {"notes.txt": b"mine"}


def test_overwrite_refuses_a_folder_holding_groups_and_touches_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["train", *TINY, "--save_dir", str(results / "demo" / "run1")]) == 0
    (results / "README.txt").write_text("the committed demo lives here")
    before = files(results)
    assert main(["train", *TINY, "--save_dir", str(results), "--overwrite"]) == 2
    assert "is not exactly one htsgd run (it also holds README.txt, demo/); nothing was removed" in capsys.readouterr().err
    assert files(results) == before


def test_overwrite_replaces_only_the_run_files(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--save_dir", str(run)]) == 0
    assert main(["train", *TINY, "--save_dir", str(run), "--overwrite", "--lr", "0.2"]) == 0
    assert json.loads((run / "config.json").read_text())["lr"] == 0.2
    assert sorted(files(run)) == ["config.json", "history.csv", "metrics.json", "model.pt", "provenance.json"]


def test_without_save_dir_each_run_gets_a_new_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "demo").mkdir(parents=True)
    (tmp_path / "results" / "demo" / "runs.csv").write_text("id\n")
    assert main(["train", *TINY]) == 0
    written = [p for p in (tmp_path / "results" / "train").iterdir()]
    assert len(written) == 1 and (written[0] / "metrics.json").is_file()
    assert files(tmp_path / "results" / "demo") == {"runs.csv": b"id\n"}
