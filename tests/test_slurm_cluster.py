"""`htsgd run --launcher slurm` on a real Slurm cluster: `make slurm-up` starts one on this machine
(tests/cluster/slurm.sh), `make test-slurm` runs these; without a cluster that answers they are skipped.

Small digits groups, seconds per run. What each shows: the submission is a Slurm job array whose ids
status follows through squeue and sacct and collect folds into the same record a local run makes; a
cancelled task is failed with its log and resubmitted alone; a run cut by its time limit or by
`scontrol requeue` resumes to the uninterrupted result, and one that cannot resume is failed as timed
out, with advice; a drained node leaves tasks pending with Slurm's reason; a job killed without writing
is failed with its log; two drivers submit each configuration once; sbatch's refusals are Slurm's words.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from htsgd.cli import main
from htsgd.pipeline import claims
from htsgd.pipeline.jobs import ENDED_STATES, GONE, slurm_states
from htsgd.pipeline.params import load_group
from htsgd.pipeline.plan import make_plan
from htsgd.pipeline.run import STILL_RUNNING, collect
from htsgd.record import names, run_folder, storage
from htsgd.record.trained_run import load_tensors

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.usefixtures("htsgd_kernel")]

SCRIPT = Path(__file__).parent / "cluster" / "slurm.sh"
TINY = {"dataset": "digits", "width": 48, "lr": 0.05, "batch_size_train": 256, "eval_freq": 5,
        "convergence_accuracy": 90.0, "iterations": 300, "iterate_noise_alpha": 1.75}
# One run of about 45 s on a CPU core (18,000 steps), longer than a 1-minute job warned 15-45 s in.
LONG = {**TINY, "width": 1024, "eval_freq": 20, "iterations": 18000, "train_to_cap": True}
TWO_NOISES = [{"iterate_noise": [0]}, {"iterate_noise": [1], "iterate_noise_scale": [0.01]}]
# A task per configuration, one CPU, 1 GB, no GPU: several side by side on a small node.
SMALL = {"gpus_per_task": 0, "cpus_per_task": 1, "mem_gb": 1, "time_min": 10}
# The uninterrupted reference, trained here with the same code and device as the jobs.
TRAIN_HERE = """
import sys
from pathlib import Path
from htsgd.pipeline.local import train_all
from htsgd.pipeline.params import load_group
from htsgd.record import group_record
from htsgd.record.digests import NOTEBOOKS
group, folder = load_group(sys.argv[1]), Path(sys.argv[2]).resolve()
train_all(group, folder, list(group.configs), Path("data").resolve(), None, NOTEBOOKS, "trained here")
group_record.write_runs_csv(group.configs, folder)
"""


def slurm(*args, check=True) -> str:
    """A Slurm command's output (SLURM_CONF is the cluster's, see `cluster`)."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 or not check, f"{' '.join(args)}: {done.stderr}"
    return done.stdout


def no_answer(command: list, conf: str) -> str | None:
    """Why the cluster configured at `conf` does not answer `command`; None when it does."""
    if not Path(conf).is_file():
        return "no such file"
    try:
        done = subprocess.run(command, env={**os.environ, "SLURM_CONF": conf}, capture_output=True, text=True,
                              timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    return (done.stderr.strip()[:200] or f"exit status {done.returncode}") if done.returncode else None


@pytest.fixture(scope="session")
def cluster() -> dict:
    """The cluster SLURM_CONF names, else the one `make slurm-up` starts: its name, node and partition's time limit.
    Skipped where none answers; failed instead with HTSGD_SLURM_REQUIRED set (CI, which has started one)."""
    conf = os.environ.get("SLURM_CONF") or subprocess.run(
        ["bash", str(SCRIPT), "env"], capture_output=True, text=True).stdout.strip().partition("=")[2]
    for command in (["sinfo"], ["sacct", "-n", "-X"]):
        if why := no_answer(command, conf):
            (pytest.fail if os.environ.get("HTSGD_SLURM_REQUIRED") else pytest.skip)(
                f"no Slurm cluster answers ({command[0]} with SLURM_CONF={conf}: {why}); "
                "`make slurm-up` starts one on this machine (root, Debian)")
    env = {**os.environ, "SLURM_CONF": conf}
    node, limit = subprocess.run(["sinfo", "-h", "-o", "%n|%l"], env=env, capture_output=True,
                                 text=True).stdout.split()[0].split("|")
    config = subprocess.run(["scontrol", "show", "config"], env=env, capture_output=True, text=True).stdout
    return {"conf": conf, "node": node, "max_time": limit, "name": re.search(r"ClusterName\s*=\s*(\S+)", config)[1]}


@pytest.fixture
def submitted(cluster, monkeypatch, tmp_path):
    """This test's cluster environment; its jobs (by group name, from `group`) are cancelled when it ends.
    One thread per run, here and in the jobs, so that both compute alike on a shared machine."""
    monkeypatch.setenv("SLURM_CONF", cluster["conf"])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    groups = []
    yield groups
    for name in groups:
        slurm("scancel", f"--name=htsgd-{name}", check=False)


def group(tmp_path, groups, name, base, grid=TWO_NOISES, seeds=(1, 2), slurm_options=SMALL, **keys) -> Path:
    """Write params `<name>.yaml`: `base` over `grid` and `seeds`, with its `slurm:` section and group keys."""
    groups.append(name)
    spec = {"description": f"slurm test {name}", "timeout": 600, **keys, "base": base, "grid": grid,
            "seeds": list(seeds), "slurm": dict(slurm_options)}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run(params, *flags) -> int:
    return main(["run", str(params), "--results_dir", "results", *flags])


def status(params, capsys) -> tuple[int, dict]:
    """`htsgd status`: its exit status and each configuration's line."""
    capsys.readouterr()
    code = main(["status", str(params), "--results_dir", "results"])
    lines = capsys.readouterr().out.splitlines()
    return code, {line.split()[0]: line for line in lines if line and not line.startswith(params.stem + ":")}


def wait_until(condition, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(every)
    return value


def live(array: str) -> list[str]:
    """The array's tasks Slurm still holds, or whose end its accounting has not recorded yet (sacct lags squeue)."""
    held = slurm("squeue", "-j", array, "-r", "-h", "-o", "%i", check=False).split()
    return held + [job for job, state in slurm_states(array).items() if state not in ENDED_STATES and job not in held]


def ended(array: str, timeout: float):
    wait_until(lambda: not live(array), timeout, f"job {array} to end", every=1)


def while_live(array: str, timeout: float):
    """Iterate while Slurm holds a task of the array, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while live(array):
        assert time.monotonic() < deadline, f"job {array} still runs after {timeout} s"
        yield


def train_here(params: Path, results: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TRAIN_HERE, str(params), str(results)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(process: subprocess.Popen, timeout: float = 300):
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out


def same_record(here: Path, there: Path, ids):
    """What the analysis reads is equal: runs.csv and each run's metrics, history and weights (timings aside)."""
    timing = ["wall_time", "steps_per_second"]
    runs = [pd.read_csv(folder / names.RUNS_CSV).drop(columns=["wall_time"]) for folder in (here, there)]
    pd.testing.assert_frame_equal(*runs)
    for config_id in ids:
        a, b = here / config_id, there / config_id
        assert ({k: v for k, v in run_folder.read_metrics(a).items() if k not in timing}
                == {k: v for k, v in run_folder.read_metrics(b).items() if k not in timing}), config_id
        assert (a / names.HISTORY).read_text() == (b / names.HISTORY).read_text(), config_id
        weights = [load_tensors(d / names.WEIGHTS) for d in (a, b)]
        assert weights[0].keys() == weights[1].keys() and all(torch.equal(weights[0][k], weights[1][k])
                                                               for k in weights[0]), config_id


def logging_shims(tmp_path, monkeypatch, *commands) -> Path:
    """Put first on PATH a shim for each command that logs its arguments, then runs the real one."""
    folder, log = tmp_path / "shims", tmp_path / "shims.log"
    folder.mkdir(exist_ok=True)
    for command in commands:
        shim = folder / command
        shim.write_text(f'#!/bin/sh\necho "{command} $*" >> {log}\nexec {shutil.which(command)} "$@"\n')
        shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return log


# ---------------------------------------------------------------- submitted, followed, collected

def test_a_group_on_slurm_is_followed_collected_and_recorded_as_here(tmp_path, submitted, cluster, capsys, monkeypatch):
    """Four configurations, two tasks at a time; the last is cancelled while it waits. Status shows each queued
    (with Slurm's reason), running and finished, asking sacct and squeue once each per array; collecting fails the
    cancelled one with its log; a second submission trains only it; the record is the one made here."""
    params = group(tmp_path, submitted, "flow", TINY, slurm_options={**SMALL, "array_parallelism": 2})
    ids, folder = list(load_group(params).configs), tmp_path / "results" / "flow"
    here = train_here(params, tmp_path / "here")
    assert run(params, "--launcher", "slurm") == STILL_RUNNING
    jobs = [claims.read_queued(folder, i)["job_id"] for i in ids]
    array = jobs[0].split("_")[0]
    assert jobs == [f"{array}_{task}" for task in range(4)] and set(jobs) >= set(live(array)) > set()
    slurm("scancel", jobs[3])

    shims, seen = logging_shims(tmp_path, monkeypatch, "sacct", "squeue"), {}
    for _ in while_live(array, 180):
        shims.unlink(missing_ok=True)
        _, lines = status(params, capsys)
        calls = shims.read_text().splitlines()
        assert [c.split()[0] for c in calls if f" {array} " in f"{c} "] in (["sacct"], ["sacct", "squeue"]), calls
        for config_id, line in lines.items():
            seen.setdefault(config_id, []).append(line.split(maxsplit=2)[1:])
        time.sleep(0.5)
    states = {i: {state for state, *_ in seen[i]} for i in ids}
    assert "running" in states[ids[0]] | states[ids[1]] | states[ids[2]], seen
    waiting = [detail for state, *detail in seen[ids[2]] if state == "queued"]
    assert any(f"job {jobs[2]} (slurm), log logs/slurm/{jobs[2]}/{jobs[2]}_0_log.err; Slurm: PENDING (" in d[0]
               for d in waiting), seen[ids[2]]

    code, lines = status(params, capsys)
    assert code == 1 and all("converged" in lines[i] for i in ids[:3])
    log = f"logs/slurm/{jobs[3]}/{jobs[3]}_0_log.err"  # never written: the task never started
    assert f"failed (slurm job {jobs[3]} ended ({GONE}) without a result; log {log})" in lines[ids[3]]
    plan = collect(make_plan(load_group(params), folder))
    assert plan.recorded == ids[:3] and list(plan.job_failed) == [ids[3]]
    assert run_folder.read_failure(folder / ids[3])["error"].endswith(f"without a result; its log: {log}")
    for config_id, job in zip(ids[:3], jobs):
        origin = storage.read_json(folder / config_id / names.PROVENANCE)
        assert origin["slurm"] == {"cluster": cluster["name"], "node": cluster["node"], "job_id": job}

    capsys.readouterr()
    assert run(params, "--launcher", "slurm") == STILL_RUNNING
    assert "1 configuration(s) submitted as 1 task(s) to slurm" in capsys.readouterr().out
    assert [i for i in ids if claims.read_queued(folder, i)] == [ids[3]]
    ended(claims.read_queued(folder, ids[3])["job_id"], 120)
    assert collect(make_plan(load_group(params), folder)).recorded == ids
    finished(here)
    same_record(tmp_path / "here", folder, ids)


# ---------------------------------------------------------------- time limits and requeues

def checkpoint_step(run_dir: Path) -> int | None:
    try:
        return int(load_tensors(run_dir / names.CHECKPOINT)["step"])
    except (OSError, RuntimeError, KeyError, EOFError):
        return None  # not written yet, or already removed by the finished run


def test_a_run_cut_by_its_time_limit_and_by_scontrol_requeue_resumes_to_the_uninterrupted_result(
        tmp_path, submitted):
    """A 1-minute job for a run of about a minute: Slurm warns it before the limit, submitit requeues it, and it
    resumes from its checkpoint; then `scontrol requeue` cuts it again, and it resumes again. The checkpoint's
    step never goes back (no start over), and the run ends equal to one trained here without interruption."""
    params = group(tmp_path, submitted, "limit", LONG, grid=[{"iterate_noise": [0]}], seeds=[1],
                   slurm_options={**SMALL, "time_min": 1}, checkpoint_every=200)
    folder = tmp_path / "results" / "limit"
    run_dir, (config_id,) = folder / "noise0_seed1", load_group(params).configs
    here = train_here(params, tmp_path / "here")
    assert run(params, "--launcher", "slurm") == STILL_RUNNING
    job = claims.read_queued(folder, config_id)
    log = folder / job["log"]
    steps, cut_at, requeued = [], None, False
    for _ in while_live(job["job_id"], 480):
        step = checkpoint_step(run_dir)
        steps += [step] if step is not None else []
        if cut_at is None and log.is_file() and "this job is timed-out" in log.read_text():
            cut_at = checkpoint_step(run_dir)  # None where the limit came before the first checkpoint: a later cut
        running = slurm("squeue", "-j", job["job_id"], "-h", "-o", "%T", check=False).strip() == "RUNNING"
        if cut_at is not None and not requeued and running and (step or 0) > cut_at:
            requeued = subprocess.run(["scontrol", "requeue", job["job_id"]], capture_output=True).returncode == 0
        time.sleep(0.3)
    assert cut_at and requeued, f"time limit cut it at {cut_at}, scontrol requeue: {requeued}"
    assert steps == sorted(steps) and max(steps) > cut_at, steps  # each start went on from the checkpoint
    history = slurm("sacct", "-j", job["job_id"], "-D", "-X", "-n", "-P", "-o", "State").split()
    assert history.count("REQUEUED") >= 2 and history[-1] == "COMPLETED", history
    assert collect(make_plan(load_group(params), folder)).recorded == [config_id]
    finished(here)
    same_record(tmp_path / "here", folder, [config_id])


def test_a_run_that_cannot_resume_is_failed_as_timed_out_with_advice(tmp_path, submitted, capsys):
    """Without checkpoints a requeued run would start over and time out again: it is not requeued, and its failure
    says so and what to change."""
    params = group(tmp_path, submitted, "nocheckpoint", {**LONG, "iterations": 24000}, grid=[{"iterate_noise": [0]}],
                   seeds=[1], slurm_options={**SMALL, "time_min": 1})
    folder = tmp_path / "results" / "nocheckpoint"
    assert run(params, "--launcher", "slurm") == STILL_RUNNING
    job = claims.read_queued(folder, "noise0_seed1")
    ended(job["job_id"], 150)
    assert "REQUEUED" not in slurm("sacct", "-j", job["job_id"], "-D", "-X", "-n", "-P", "-o", "State")
    capsys.readouterr()
    assert run(params) == 1
    advice = (f"timed out: slurm job {job['job_id']} reached its time limit (1 min) and was not requeued, since the "
              "run cannot resume: set checkpoint_every in nocheckpoint.yaml, or raise slurm.time_min "
              "(--slurm_time_min), then submit it again with --launcher slurm")
    assert f"nocheckpoint/noise0_seed1: {advice}" in capsys.readouterr().err
    failure = run_folder.read_failure(folder / "noise0_seed1")
    assert failure["status"] == names.TIMEOUT and failure["error"] == advice and failure["job"]["log"] == job["log"]
    assert f"timeout ({advice}; log {job['log']})" in status(params, capsys)[1]["noise0_seed1"]


# ---------------------------------------------------------------- nodes and jobs that fail

def pending_reason(params, capsys, config_id) -> str | None:
    """Why Slurm keeps the configuration's task pending, as status shows it, once it is no longer the array's limit."""
    found = re.search(r"Slurm: PENDING \((.*)\)\)$", status(params, capsys)[1][config_id])
    return found[1] if found and found[1] != "JobArrayTaskLimit" else None


def test_a_drained_node_leaves_tasks_pending_with_slurms_reason_until_resumed(tmp_path, submitted, cluster, capsys):
    """The node is drained while the first of two tasks runs: that one finishes, the other waits, and status says
    why in Slurm's words; resumed, the node runs it."""
    params = group(tmp_path, submitted, "drain", TINY, grid=TWO_NOISES, seeds=[1],
                   slurm_options={**SMALL, "array_parallelism": 1})
    folder, node = tmp_path / "results" / "drain", cluster["node"]
    assert run(params, "--launcher", "slurm") == STILL_RUNNING
    first, second = (claims.read_queued(folder, i)["job_id"] for i in load_group(params).configs)
    wait_until(lambda: slurm("squeue", "-j", first, "-h", "-o", "%T").strip() == "RUNNING", 60, "the first task")
    try:
        slurm("scontrol", "update", f"nodename={node}", "state=drain", "reason=htsgd test")
        wait_until(lambda: not live(first), 120, "the first task to finish on the draining node")
        reason = wait_until(lambda: pending_reason(params, capsys, "noise1_sigma0.01_seed1"), 30, "the node's reason")
        assert "DRAINED" in reason, reason  # Slurm: "Nodes required for job are DOWN, DRAINED or reserved for ..."
        time.sleep(6)  # the scheduler looks every 5 s: still pending
        assert slurm("squeue", "-j", second, "-h", "-o", "%T").strip() == "PENDING"
    finally:
        slurm("scontrol", "update", f"nodename={node}", "state=resume")
    ended(second, 120)
    assert collect(make_plan(load_group(params), folder)).recorded == list(load_group(params).configs)


def test_a_job_killed_without_writing_is_failed_with_its_log_never_left_queued(tmp_path, submitted, capsys):
    """kill -9 of the task's process while it trains: the job ends failed, and so does its configuration."""
    params = group(tmp_path, submitted, "killed", LONG, grid=[{"iterate_noise": [0]}], seeds=[1])
    folder = tmp_path / "results" / "killed"
    assert run(params, "--launcher", "slurm") == STILL_RUNNING
    job = claims.read_queued(folder, "noise0_seed1")
    holder = wait_until(lambda: claims.holder(claims.lock_path(folder, "noise0_seed1")), 60, "the task to train")
    os.kill(int(re.match(r"pid (\d+) ", holder)[1]), signal.SIGKILL)
    ended(job["job_id"], 60)
    code, lines = status(params, capsys)
    assert code == 1 and f"failed (slurm job {job['job_id']} ended (FAILED) without a result; log {job['log']})" in \
        lines["noise0_seed1"]
    plan = collect(make_plan(load_group(params), folder))
    assert list(plan.job_failed) == ["noise0_seed1"] and not plan.queued
    assert claims.read_queued(folder, "noise0_seed1") is None
    assert run_folder.read_failure(folder / "noise0_seed1")["job"]["job_id"] == job["job_id"]


# ---------------------------------------------------------------- submitting

def test_two_drivers_at_once_submit_each_configuration_once(tmp_path, submitted):
    params = group(tmp_path, submitted, "twice", TINY)
    drivers = [subprocess.Popen([sys.executable, "-m", "htsgd.cli", "run", str(params), "--results_dir", "results",
                                 "--launcher", "slurm"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    outs = [d.communicate(timeout=120)[0] for d in drivers]
    assert sum("4 configuration(s) submitted" in out for out in outs) == 1, outs
    assert sorted(d.returncode for d in drivers) in ([2, STILL_RUNNING], [STILL_RUNNING, STILL_RUNNING]), outs
    tasks = slurm("squeue", "--name=htsgd-twice", "-r", "-h", "-o", "%i").split()
    assert len(tasks) <= 4 and len({t.split("_")[0] for t in tasks}) == 1, tasks
    assert len(list((tmp_path / "results" / "twice" / names.LOCKS).glob("*.queued"))) == 4


def impossible_time(max_time: str) -> int | None:
    """A time limit in minutes beyond the partition's (`D-HH:MM:SS`, `HH:MM:SS`); None where it has none."""
    if max_time in ("infinite", "UNLIMITED"):
        return None
    days, _, clock = max_time.rpartition("-")
    hours, minutes, _ = ([0, 0, 0] + [int(p) for p in clock.split(":")])[-3:]
    return (int(days or 0) * 24 + hours) * 60 + minutes + 1


@pytest.mark.parametrize("option", ["partition", "time_min", "account"])
def test_bad_slurm_options_are_refused_in_slurms_words_and_nothing_is_queued(tmp_path, submitted, cluster, capsys,
                                                                            option):
    value, words = {"partition": ("nowhere", "invalid partition specified: nowhere"),
                    "time_min": (impossible_time(cluster["max_time"]), "Requested time limit is invalid"),
                    "account": ("nobody", "Invalid account")}[option]
    if value is None:
        pytest.skip(f"partition of {cluster['name']} has no time limit to exceed")
    params = group(tmp_path, submitted, "refused", TINY, seeds=[1])
    capsys.readouterr()
    assert run(params, "--launcher", "slurm", f"--slurm_{option}", str(value)) == 2
    err = capsys.readouterr().err
    assert "refused.yaml: sbatch refused the job array, so nothing was submitted: sbatch: error: " in err, err
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert not list((tmp_path / "results" / "refused").rglob("*.queued"))
