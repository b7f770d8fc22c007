"""What only a GPU can check (make test-gpu): resuming on CUDA, and workers sharing one GPU."""

import pandas as pd
import pytest
import torch

from htsgd.core.config import make_config
from htsgd.core.data import load
from htsgd.pipeline.run import run_groups
from htsgd.record.trained_run import train_in_folder

pytestmark = pytest.mark.gpu


def test_a_run_resumed_on_cuda_ends_where_an_uninterrupted_one_does(tmp_path, interrupted):
    data = load("digits", device="cuda")
    config = make_config({"dataset": "digits", "width": 512, "lr": 0.05, "batch_size_train": 64, "eval_freq": 5,
                          "convergence_accuracy": 100.0, "iterations": 60, "seed": 4,
                          "iterate_noise": 1, "iterate_noise_scale": 0.01, "iterate_noise_alpha": 1.75})
    whole = train_in_folder(config, data, tmp_path / "whole", "cuda", progress=False)
    with interrupted(45):
        train_in_folder(config, data, tmp_path / "cut", "cuda", progress=False, checkpoint_every=20)
    resumed = train_in_folder(config, data, tmp_path / "cut", "cuda", progress=False, checkpoint_every=20)
    assert resumed["history"] == whole["history"]
    assert all(torch.equal(p, q) for p, q in zip(whole["model"].parameters(), resumed["model"].parameters()))


@pytest.mark.usefixtures("htsgd_kernel")
def test_two_workers_share_one_gpu(tmp_path, tiny_group, monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert run_groups([tiny_group()], results_dir=tmp_path / "results", device="cuda", workers=2) == 0
    assert "4 to run on 2 workers" in capsys.readouterr().out
    runs = pd.read_csv(tmp_path / "results" / "tiny" / "runs.csv")
    assert set(runs["status"]) == {"converged"}
    devices = {(tmp_path / "results" / "tiny" / i / "provenance.json").read_text().count("(CUDA)") for i in runs["id"]}
    assert devices == {1}  # every run says it trained on the GPU
