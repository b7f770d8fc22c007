"""What a user can do wrong on the command line, or what the machine can do to them: one line, never a traceback,
and nothing lost."""

import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager

import pytest
import torch

from htsgd.cli import main
from htsgd.pipeline import claims
from htsgd.record import names

TRAIN = ["train", "--dataset", "digits", "--width", "16", "--iterations", "20", "--eval_freq", "5", "--no_progress",
         "--device", "cpu"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_htsgd_train_waits_for_no_one_but_refuses_a_run_another_process_holds(tmp_path, capsys):
    run_dir = tmp_path / "group" / "run"
    with claims.hold(claims.lock_path(run_dir.parent, run_dir.name), "htsgd run params/group.yaml"):
        assert main([*TRAIN, "--save_dir", str(run_dir)]) == 2
        assert "htsgd run params/group.yaml" in one_line_error(capsys)
    assert not (run_dir / names.CONFIG).exists()
    assert main([*TRAIN, "--save_dir", str(run_dir)]) == 0
    assert (run_dir / names.METRICS).is_file()


def test_overwrite_removes_nothing_while_another_process_trains_the_run(tmp_path, capsys):
    run_dir = tmp_path / "group" / "run"
    assert main([*TRAIN, "--save_dir", str(run_dir)]) == 0
    before = sorted(p.name for p in run_dir.iterdir())
    with claims.hold(claims.lock_path(run_dir.parent, run_dir.name), "htsgd run params/group.yaml"):
        assert main([*TRAIN, "--save_dir", str(run_dir), "--overwrite"]) == 2
    assert sorted(p.name for p in run_dir.iterdir()) == before


@pytest.mark.parametrize("device", ["fast", "cuda:x", "tpu:0", "cuda:99"])
def test_an_unknown_device_is_one_line(tmp_path, capsys, device):
    if device == "cuda:99" and torch.cuda.device_count() > 99:
        pytest.skip("a machine with a hundred GPUs")
    args = [a for a in TRAIN if a not in ("--device", "cpu")]
    assert main([*args, "--device", device, "--save_dir", str(tmp_path / "run")]) == 2
    assert f"--device {device}" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [[*TRAIN, "--save_dir"], ["run", "params/demo.yaml", "--results_dir"],
                                     ["status", "params/demo.yaml", "--results_dir"], ["site", "--results_dir"],
                                     ["report", "params/demo.yaml", "--results_dir"]])
def test_a_folder_flag_naming_a_file_is_one_line(tmp_path, capsys, command):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    assert main([*command, str(a_file / "below")]) == 2
    assert "is a file, not a folder" in one_line_error(capsys)
    assert a_file.read_text() == "mine\n"


def pickled_code(path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo ran",))

    torch.save({"model": Payload()}, path)


@pytest.mark.parametrize("damage", [pickled_code, lambda path: path.write_bytes(b"\x00" * 64),
                                    lambda path: torch.save([1, 2], path),
                                    lambda path: torch.save({"model": torch.zeros(1), "optimizer": {}, "step": 5,
                                                             "noise_generator": torch.zeros(1), "history": [],
                                                             "elapsed": 1.0, "initial_train_loss": 2.3}, path)])
def test_a_checkpoint_that_is_not_plain_tensors_is_one_line_without_torchs_advice(tmp_path, capsys, damage):
    run_dir = tmp_path / "run"
    assert main([*TRAIN, "--save_dir", str(run_dir), "--checkpoint_every", "5"]) == 0
    for name in (names.METRICS, names.WEIGHTS, names.HISTORY, names.PROVENANCE):
        (run_dir / name).unlink()  # as if it were stopped after its last checkpoint
    damage(run_dir / names.CHECKPOINT)
    assert main([*TRAIN, "--save_dir", str(run_dir), "--checkpoint_every", "5"]) == 2
    err = one_line_error(capsys)
    assert f"{names.CHECKPOINT} is damaged" in err and "weights_only" not in err and "Move it aside" in err


def test_a_failed_download_leaves_no_empty_folder(tmp_path, capsys, monkeypatch):
    """torchvision's real download, from a mirror that refuses the connection (as offline, on any machine)."""
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    data = tmp_path / "data"
    data.mkdir()
    (data / "mine.txt").write_text("kept\n")
    args = [a if a != "digits" else "mnist" for a in TRAIN]
    assert main([*args, "--data_dir", str(data), "--save_dir", str(tmp_path / "run")]) == 2
    assert "download failed" in one_line_error(capsys)
    assert sorted(p.relative_to(data).as_posix() for p in data.rglob("*")) == ["mine.txt"]
    assert not (tmp_path / "run").exists()


@contextmanager
def mounted(folder, options: str):
    """A tmpfs at `folder` (root only): a real read-only or full file system, unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


TINY = """
    timeout: 600
    base: {dataset: digits, width: 32, lr: 0.05, batch_size_train: 256, eval_freq: 5,
           convergence_accuracy: 80.0, iterations: 300}
    grid: {iterate_noise: [0]}
    seeds: [1, 2]
"""


def test_a_read_only_results_folder_is_one_line_and_status_still_reads_it(tmp_path, capsys):
    params = tmp_path / "tiny.yaml"
    params.write_text(textwrap.dedent(TINY))
    with mounted(tmp_path / "results", "ro,size=1m") as results:
        assert main(["run", str(params), "--results_dir", str(results)]) == 1
        err = one_line_error(capsys)
        assert "Read-only file system" in err and str(results) in err and "run the same command again" in err
        assert main(["status", str(params), "--results_dir", str(results)]) == 0


@pytest.mark.slow
@pytest.mark.usefixtures("htsgd_kernel")
def test_a_full_disk_is_one_line_and_the_rerun_loses_nothing(tmp_path):
    """A results folder that fills up: the driver names the file it could not write; given room, the same command
    finishes, training again only what had not finished."""
    params = tmp_path / "tiny.yaml"
    params.write_text(textwrap.dedent(TINY))
    command = [sys.executable, "-m", "htsgd.cli", "run", str(params), "--results_dir"]
    with mounted(tmp_path / "results", "size=160k") as results:
        full = subprocess.run([*command, str(results)], capture_output=True, text=True, timeout=600)
        assert full.returncode == 1, full.stdout + full.stderr
        # The driver names the file it could not write, or a notebook that failed says its disk is full.
        assert ("No space left on device" in full.stderr or "KiB free, likely why" in full.stderr), full.stderr
        assert "Traceback" not in full.stderr, full.stderr
        finished = {p: p.read_bytes() for p in results.glob(f"tiny/*/{names.HISTORY}")}
        subprocess.run(["mount", "-o", "remount,size=64m", str(results)], check=True)
        again = subprocess.run([*command, str(results)], capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr
        assert {p: p.read_bytes() for p in finished} == finished  # what was trained stays as it was
        assert (results / "tiny" / "tables" / names.VERDICT_MD).is_file()


def test_htsgd_train_into_a_group_waits_for_its_driver_and_elsewhere_leaves_no_locks(tmp_path, capsys):
    group = tmp_path / "results" / "group"
    group.mkdir(parents=True)
    (group / names.RUNS_CSV).write_text("id,status\n")
    assert main([*TRAIN, "--save_dir", str(group / "run")]) == 0
    before = (group / "run" / names.METRICS).read_bytes()
    with claims.hold(claims.lock_path(group, "driver"), "htsgd run params/group.yaml"):  # analysing, say
        assert main([*TRAIN, "--save_dir", str(group / "run"), "--overwrite", "--seed", "3"]) == 2
        assert "htsgd run params/group.yaml" in one_line_error(capsys)
    assert (group / "run" / names.METRICS).read_bytes() == before
    assert main([*TRAIN, "--save_dir", str(tmp_path / "mine" / "run")]) == 0
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["run"]


def test_a_notebook_failing_on_a_nearly_full_disk_says_the_disk_is_full(tmp_path):
    from htsgd.pipeline.notebook import disk_space_note

    assert disk_space_note(tmp_path) == ""  # room enough: the notebook's own error says it all
    with mounted(tmp_path / "disk", "size=64k") as disk:
        (disk / "filler").write_bytes(b"\0" * 60 * 1024)
        note = disk_space_note(disk)
    assert "KiB free, likely why: free space there, then run the same command again" in note
