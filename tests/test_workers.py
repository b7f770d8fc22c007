"""Several configurations at once: local workers, Slurm through submitit's local executor, locks, kernels."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from htsgd.pipeline import claims as locks, local as workers, notebook as execution
from htsgd.record import names, run_folder
from htsgd.cli import main
from htsgd.errors import UserError
from htsgd.pipeline.params import load_group
from htsgd.pipeline.run import STILL_RUNNING, run_groups
from test_resume import finish, kill_when, record, start

pytestmark = pytest.mark.usefixtures("htsgd_kernel")


def test_cpu_workers_share_the_cores(monkeypatch):
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(workers, "visible_gpus", lambda: [])
    assert workers.worker_setups(2, "cpu") == [({"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}, "cpu")] * 2
    assert workers.worker_setups(3, None) == [({"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}, None)] * 3
    assert workers.worker_setups(16, "cpu") == [({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, "cpu")] * 16


def test_gpu_workers_see_one_gpu_each_and_call_it_cuda(monkeypatch):
    """Each worker sees only its GPU, so the device it passes on must name it as the first one, not cuda:K."""
    monkeypatch.setattr(workers, "visible_gpus", lambda: ["2", "5"])
    spread = [{"CUDA_VISIBLE_DEVICES": g} for g in ("2", "5", "2", "5", "2")]
    assert workers.worker_setups(5, "cuda") == [(env, "cuda") for env in spread]
    assert workers.worker_setups(5, None) == [(env, None) for env in spread]  # the notebook's default: cuda
    assert workers.worker_setups(3, "cuda:1") == [({"CUDA_VISIBLE_DEVICES": "5"}, "cuda")] * 3
    assert workers.worker_setups(2, "cuda:0") == [({"CUDA_VISIBLE_DEVICES": "2"}, "cuda")] * 2
    with pytest.raises(UserError, match="--device cuda:2: the visible GPUs are cuda:0 to cuda:1"):
        workers.worker_setups(2, "cuda:2")
    monkeypatch.setattr(workers, "visible_gpus", lambda: [])
    with pytest.raises(UserError, match="--device cuda: no GPU visible"):
        workers.worker_setups(2, "cuda")


class FakeConfig:
    """A configuration whose parameters are read in the worker: it marks that it started, then acts as told."""

    def __init__(self, config_id, marks: Path, act: str):
        self.config_id, self.marks, self.act = config_id, marks, act

    def to_dict(self):
        (self.marks / self.config_id).touch()
        if self.act == "raise":
            raise RuntimeError("a bug")
        if self.act.startswith("sleep "):
            time.sleep(float(self.act.split()[1]))
            raise RuntimeError("slept")
        return {}


class FakeGroup:
    timeout, checkpoint_every = 60, None

    def __init__(self, marks: Path, **acts):
        marks.mkdir(parents=True, exist_ok=True)
        self.configs = {i: FakeConfig(i, marks, act) for i, act in acts.items()}


def _notebook(path: Path, *cells: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "htsgd", "display_name": "htsgd", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(cells[0], metadata={"tags": ["parameters"]}),
                *(nbformat.v4.new_code_cell(c) for c in cells[1:])]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path.parent


@pytest.mark.slow  # starts kernels
def test_workers_pinned_to_a_gpu_pass_cuda_to_their_notebooks(tmp_path, monkeypatch, capsys):
    """--workers 2 --device cuda:1 with GPUs 4 and 7 visible: each notebook sees GPU 7 alone and gets device cuda."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,7")
    notebooks = _notebook(tmp_path / "notebooks" / names.NOTEBOOK, "device = run_dir = None",
                          "import json, os\nwith open(os.path.join(run_dir, 'seen.json'), 'w') as f:\n"
                          "    json.dump([device, os.environ.get('CUDA_VISIBLE_DEVICES')], f)")
    group_dir = tmp_path / "group"
    workers.train_all(FakeGroup(tmp_path / "marks", a="run", b="run"), group_dir, ["a", "b"], tmp_path, "cuda:1",
                      notebooks, "test", workers=2, fresh_kernels=True)
    seen = {i: json.loads((group_dir / i / "seen.json").read_text()) for i in ("a", "b")}
    assert seen == {"a": ["cuda", "7"], "b": ["cuda", "7"]}, capsys.readouterr().out


def test_an_exception_in_a_worker_stops_the_pool_and_names_its_configuration(tmp_path):
    """Only what already runs ends; nothing queued starts (each would take 30 s), and the error says where it was."""
    marks = tmp_path / "started"
    group = FakeGroup(marks, boom="raise", slow1="sleep 1", slow2="sleep 30", slow3="sleep 30", slow4="sleep 30")
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="a bug") as raised:
        workers.train_all(group, tmp_path / "group", list(group.configs), tmp_path, "cpu", tmp_path, "test", workers=2)
    assert time.monotonic() - started < 30
    assert "(raised while training boom)" in raised.value.__notes__
    assert {p.name for p in marks.iterdir()} == {"boom", "slow1"}


@pytest.mark.slow  # starts kernels
def test_two_workers_give_the_record_of_one(tmp_path, tiny_group, capsys, monkeypatch):
    """Equal to the last digit when every kernel uses one thread: torch's float sums depend on the thread count."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 2)  # two workers: one thread each
    params = tiny_group()
    assert run_groups([params], results_dir=tmp_path / "one") == 0
    capsys.readouterr()
    assert run_groups([params], results_dir=tmp_path / "two", workers=2) == 0
    out = capsys.readouterr().out
    assert "4 to run on 2 workers" in out and "[4/4]" in out and "failed 0, left 0" in out
    one, two = record(tmp_path / "one" / "tiny"), record(tmp_path / "two" / "tiny")
    pd.testing.assert_frame_equal(one[0], two[0])
    assert one[1] == two[1] and one[2] == two[2]


@pytest.mark.slow  # starts kernels
def test_a_reused_kernel_records_what_fresh_kernels_record(tmp_path, tiny_group, capsys):
    params = tiny_group()
    assert run_groups([params], results_dir=tmp_path / "fresh", fresh_kernels=True) == 0
    assert run_groups([params], results_dir=tmp_path / "reused") == 0
    fresh, reused = record(tmp_path / "fresh" / "tiny"), record(tmp_path / "reused" / "tiny")
    pd.testing.assert_frame_equal(fresh[0], reused[0])
    assert fresh[1] == reused[1] and fresh[2] == reused[2]
    for run_id in pd.read_csv(tmp_path / "reused" / "tiny" / "runs.csv")["id"]:
        cells = json.loads((tmp_path / "reused" / "tiny" / run_id / "train.ipynb").read_text())["cells"]
        counts = [c["execution_count"] for c in cells if c["cell_type"] == "code"]
        assert counts == list(range(1, len(counts) + 1))  # as a fresh kernel numbers them
        assert not [o for c in cells for o in c.get("outputs", []) if o["output_type"] in ("stream", "error")]


def test_a_second_driver_on_the_same_group_is_refused(tmp_path, tiny_group, capsys):
    params = tiny_group()
    group = tmp_path / "results" / "tiny"
    with locks.hold(locks.lock_path(group, "driver"), "htsgd run tiny.yaml (the first one)"):
        assert main(["run", str(params), "--results_dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert "htsgd run tiny.yaml (the first one) holds" in err and f"pid {os.getpid()}" in err
    assert not [p for p in group.iterdir() if p.is_dir() and p.name != locks.LOCKS]


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, capsys):
    path = tmp_path / "driver.lock"
    holder = subprocess.Popen([sys.executable, "-c", "from htsgd.pipeline import claims as locks; import time\n"
                               f"with locks.hold({str(path)!r}, 'doomed'):\n    print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held" and locks.holder(path).endswith(": doomed")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert locks.holder(path) is None
    with locks.hold(path, "the next one"):
        assert locks.holder(path).endswith(": the next one")
    assert "a lock left by a process that ended (pid" in capsys.readouterr().out


def test_configurations_trained_elsewhere_are_left_to_it_and_the_analysis_waits(tiny_group, tmp_path, capsys):
    params = tiny_group(seeds=("seeds: [1, 2]", "seeds: [1]"))
    results, group = tmp_path / "results", tmp_path / "results" / "tiny"
    with contextlib.ExitStack() as held:
        for config_id in load_group(params).configs:
            held.enter_context(locks.hold(locks.lock_path(group, config_id), "another worker"))
        assert run_groups([params], results_dir=results) == STILL_RUNNING
    out = capsys.readouterr().out
    assert "0 to run, 2 running elsewhere" in out and "analysis and report wait" in out
    assert set(pd.read_csv(group / names.RUNS_CSV)["status"]) == {"pending"}
    assert not [p for p in group.iterdir() if p.is_dir() and p.name != names.LOCKS]  # nothing trained here


@pytest.mark.slow  # starts kernels
def test_a_configuration_trained_elsewhere_is_skipped_and_analysis_waits(tmp_path, tiny_group, capsys):
    params = tiny_group(seeds=("seeds: [1, 2]", "seeds: [1]"))
    group = tmp_path / "results" / "tiny"
    with locks.hold(locks.lock_path(group, "noise0_seed1"), "another worker"):
        assert run_groups([params], results_dir=tmp_path / "results") == STILL_RUNNING
    out = capsys.readouterr().out
    assert "1 to run, 1 running elsewhere" in out and "analysis and report wait" in out
    assert not run_folder.is_complete(group / "noise0_seed1") and run_folder.is_recorded(group / "noise1_sigma0.01_seed1")
    assert pd.read_csv(group / "runs.csv").set_index("id").loc["noise0_seed1", "status"] == "pending"
    assert run_groups([params], results_dir=tmp_path / "results") == 0
    assert (group / "report.ipynb").is_file()


@pytest.mark.slow  # starts kernels
def test_a_kernel_that_fails_to_start_is_started_again(tmp_path, monkeypatch):
    real, calls = execution.KernelManager.start_kernel, []

    async def flaky(self, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")  # as nbclient says when ports collide
        return await real(self, **kwargs)

    monkeypatch.setattr(execution.KernelManager, "start_kernel", flaky)
    km = execution.start_kernel(tmp_path)
    try:
        assert execution.run_sync(km.is_alive)() and len(calls) == 2
    finally:
        execution.ReusedKernel(tmp_path).release(km, healthy=False)


@pytest.mark.slow  # starts kernels
def test_killed_while_two_workers_run_then_rerun_ends_with_the_uninterrupted_record(tmp_path, tiny_group):
    params = tiny_group()
    finish(["run", str(params), "--results_dir", str(tmp_path / "whole"), "--workers", "2"])  # the same threads
    group = tmp_path / "cut" / "tiny"
    args = ["run", str(params), "--results_dir", str(tmp_path / "cut"), "--workers", "2"]
    kill_when(start(args), lambda: len(list(group.glob(f"*/{names.RUNNING_NOTEBOOK}"))) >= 1
              and len(list(group.glob(f"*/{names.METRICS}"))) >= 1)
    finish(args)
    whole, cut = record(tmp_path / "whole" / "tiny"), record(group)
    pd.testing.assert_frame_equal(whole[0], cut[0])
    assert whole[1] == cut[1] and whole[2] == cut[2]


@pytest.mark.slow  # starts kernels
def test_slurm_launcher_through_submitits_local_executor(tmp_path, tiny_group, capsys):
    """The same code as on a cluster up to the executor: submit, follow with status, collect with run."""
    params = tiny_group(seeds=("seeds: [1, 2]", "seeds: [1]"))
    results = tmp_path / "results"
    args = ["run", str(params), "--results_dir", str(results), "--launcher", "slurm", "--slurm_cluster", "local",
            "--slurm_pack", "2"]
    assert main(args) == STILL_RUNNING
    out = capsys.readouterr().out
    assert "2 configuration(s) submitted as 1 task(s)" in out
    group = results / "tiny"
    assert main(["status", str(params), "--results_dir", str(results)]) == 0
    assert "queued (job" in capsys.readouterr().out or all(run_folder.is_recorded(group / i) for i in
                                                            ("noise0_seed1", "noise1_sigma0.01_seed1"))
    deadline = time.monotonic() + 300
    while main(["run", str(params), "--results_dir", str(results)]) == STILL_RUNNING:  # collects once the job ends
        assert time.monotonic() < deadline, "the local job never finished"
        time.sleep(2)
    assert set(pd.read_csv(group / "runs.csv")["status"]) == {"converged"} and (group / "report.ipynb").is_file()
    assert list((group / "logs" / "slurm").glob("*/*_log.out"))
    assert main(["status", str(params), "--results_dir", str(results)]) == 0
    assert "tiny: 2 converged; analysis up to date" in capsys.readouterr().out
