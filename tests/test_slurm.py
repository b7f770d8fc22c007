"""The Slurm launcher: asked for explicitly, its jobs followed (sacct once per array, local jobs by pid), and a
job that ended without a result collected as a failure with its log, never retrained unasked."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import submitit

from htsgd.cli import main
from htsgd.pipeline import claims, jobs, local, slurm
from htsgd.pipeline.params import load_group
from htsgd.pipeline.plan import make_plan
from htsgd.pipeline.run import STILL_RUNNING, collect, run_groups
from htsgd.pipeline.status import status_group
from htsgd.record import names, run_folder, storage
from htsgd.record.digests import NOTEBOOKS

ONE_CONFIG = ("  - iterate_noise: [1]\n    iterate_noise_scale: [0.01]\n", "")  # leaves noise0_seed1 alone
SEED_ONE = ("seeds: [1, 2]", "seeds: [1]")
HEAVY = {"torch", "submitit", "jupyter_client", "nbclient", "papermill"}


def dead_pid() -> int:
    """The id of a process that has ended and been reaped."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def local_marker(pid) -> dict:
    return {"job_id": str(pid), "executor": "local", "log": f"logs/slurm/{pid}/{pid}_0_log.err",
            "result": f"logs/slurm/{pid}/{pid}_0_result.pkl"}


def ended(marker: dict) -> str | None:
    """How the job a marker names has ended, as status and collecting see it; None while it has not."""
    job = jobs.Job.from_marker(marker)
    jobs.follow([job])
    return job.ended


def fake_slurm(tmp_path, monkeypatch, command: str, output: str, code: int = 0):
    """An executable Slurm `command` (sacct, squeue) first on PATH: logs its arguments to the returned file, prints
    `output` (to stderr when it fails with `code`)."""
    folder, log = tmp_path / "bin", tmp_path / f"{command}.log"
    folder.mkdir(exist_ok=True)
    script = folder / command
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\ncat <<'EOF'{' >&2' if code else ''}\n"
                      f"{textwrap.dedent(output).strip()}\nEOF\nexit {code}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return log


def broken_notebooks(tmp_path):
    """A folder whose train notebook takes its parameters, then raises."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    train = json.loads((NOTEBOOKS / names.NOTEBOOK).read_text())
    train["cells"] = [c for c in train["cells"] if "parameters" in c["metadata"].get("tags", [])]
    train["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                           "source": "raise RuntimeError('broken on purpose')"})
    (notebooks / names.NOTEBOOK).write_text(json.dumps(train))
    return notebooks


def wait_for(path, timeout=300):
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.5)


# ---------------------------------------------------------------- fault 1: Slurm asked for explicitly

@pytest.mark.parametrize("present, missing", [([], "sbatch and sacct"), (["sbatch"], "sacct")])
def test_slurm_launcher_without_slurm_is_refused(tmp_path, tiny_group, capsys, monkeypatch, present, missing):
    """Before: submitit's AutoExecutor, given no cluster, fell back to local jobs that the markers called Slurm."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for command in present:
        (folder / command).write_text("#!/bin/sh\nexit 1\n")
        (folder / command).chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    results = tmp_path / "results"
    assert main(["run", str(tiny_group()), "--results_dir", str(results), "--launcher", "slurm"]) == 2
    err = capsys.readouterr().err
    assert f"Slurm's {missing} not found on PATH, so nothing was submitted" in err and "cluster: local" in err
    assert not results.exists()  # nothing submitted, no marker, no log folder


@pytest.mark.slow  # runs jobs that execute notebooks
@pytest.mark.usefixtures("htsgd_kernel")
def test_a_local_cluster_job_names_its_executor_and_keeps_its_claim_until_collected(tmp_path, tiny_group, capsys):
    """`slurm: {cluster: local}` runs the Slurm path here on purpose. Each marker names the executor and the job's
    log, the runs' provenance names the job, and the markers stay while the job trains (before: removed when
    training started, so a requeued task was neither locked nor queued) until `collect` sees the runs recorded."""
    params = tiny_group(seeds=SEED_ONE, slurm=("seeds: [1]", "seeds: [1]\nslurm: {cluster: local, pack: 2}"))
    results, group = tmp_path / "results", tmp_path / "results" / "tiny"
    assert main(["run", str(params), "--results_dir", str(results), "--launcher", "slurm"]) == STILL_RUNNING
    assert "2 configuration(s) submitted as 1 task(s) to local" in capsys.readouterr().out
    ids = ["noise0_seed1", "noise1_sigma0.01_seed1"]
    markers = [claims.read_queued(group, i) for i in ids]
    assert markers[0] == markers[1] and markers[0]["executor"] == "local"
    job_id = markers[0]["job_id"]
    assert markers[0]["log"] == f"logs/slurm/{job_id}/{job_id}_0_log.err"
    wait_for(group / markers[0]["result"])  # the job has trained both and returned
    assert [claims.read_queued(group, i) for i in ids] == markers  # not collected yet: still claimed
    for config_id in ids:
        command = storage.read_json(group / config_id / names.PROVENANCE)["command"]
        assert command.endswith(f"[local job {job_id}]"), command
    plan = collect(make_plan(load_group(params), group))
    assert plan.recorded == ids and not plan.queued
    assert [claims.read_queued(group, i) for i in ids] == [None, None]


def collected_job_failure(tmp_path, tiny_group, capsys):
    """noise0_seed1 given to a local job that ended without a result: status and `htsgd run` name the job and its log,
    `htsgd run` records that as the configuration's failure and never trains it unasked. (params, results, group)"""
    params = tiny_group(seeds=SEED_ONE, grid=ONE_CONFIG)
    results, group = tmp_path / "results", tmp_path / "results" / "tiny"
    pid = dead_pid()
    job = local_marker(pid)
    claims.mark_queued(group, "noise0_seed1", job)
    status = ["status", str(params), "--results_dir", str(results)]
    assert main(status) == 1
    assert f"failed (local job {pid} ended (ENDED) without a result; log {job['log']})" in capsys.readouterr().out

    assert main(["run", str(params), "--results_dir", str(results)]) == 1
    out, err = capsys.readouterr()
    assert "1 left without a result by their job" in out
    assert f"tiny/noise0_seed1: local job {pid} ended (ENDED) without a result; its log: {job['log']}" in err
    assert not (group / "noise0_seed1" / names.NOTEBOOK).exists() and claims.read_queued(group, "noise0_seed1") is None
    assert run_folder.read_failure(group / "noise0_seed1")["job"]["job_id"] == str(pid)
    assert main(status) == 1
    assert f"failed (local job {pid} ended (ENDED) without a result; its log: {job['log']})" in capsys.readouterr().out
    assert main(["run", str(params), "--results_dir", str(results)]) == 1  # still not retrained unasked
    assert not (group / "noise0_seed1" / names.NOTEBOOK).exists()
    return params, results, group


def test_a_job_that_died_without_a_result_is_failed_with_its_log_and_not_retrained(tmp_path, tiny_group, capsys):
    """Before: a job that ended without a result was forgotten (local) or stayed queued forever (sacct could not
    find it), and a plain `htsgd run` trained the configuration here."""
    collected_job_failure(tmp_path, tiny_group, capsys)


@pytest.mark.slow  # executes a notebook
@pytest.mark.usefixtures("htsgd_kernel")
def test_a_configuration_its_job_left_without_a_result_is_trained_here_when_asked(tmp_path, tiny_group, capsys):
    params, results, group = collected_job_failure(tmp_path, tiny_group, capsys)
    assert main(["run", str(params), "--results_dir", str(results), "--launcher", "local"]) == 0
    assert run_folder.is_recorded(group / "noise0_seed1") and run_folder.read_failure(group / "noise0_seed1") is None


@pytest.mark.slow  # runs jobs that execute notebooks
@pytest.mark.usefixtures("htsgd_kernel")
def test_a_training_failure_in_a_job_keeps_its_error_and_names_the_job(tmp_path, tiny_group, capsys):
    """A job that returned a failed notebook ended with a result: its error is kept (not replaced by 'ended
    without a result'), the job and its log are added, and a plain `htsgd run` does not retrain it here."""
    notebooks = broken_notebooks(tmp_path)
    params = tiny_group(seeds=SEED_ONE, grid=ONE_CONFIG)
    results, group = tmp_path / "results", tmp_path / "results" / "tiny"
    assert run_groups([params], results, notebooks=notebooks, launcher="slurm",
                      slurm_options={"cluster": "local"}) == STILL_RUNNING
    job = claims.read_queued(group, "noise0_seed1")
    wait_for(group / job["result"])
    while ended(job) is None:  # the job's process exits just after writing its result
        time.sleep(0.2)
    capsys.readouterr()
    assert run_groups([params], results, notebooks=notebooks) == 1
    err = capsys.readouterr().err
    failure = run_folder.read_failure(group / "noise0_seed1")
    assert "broken on purpose" in failure["error"] and "broken on purpose" in err
    assert failure["job"] == {"job_id": job["job_id"], "executor": "local", "log": job["log"]}
    assert claims.read_queued(group, "noise0_seed1") is None
    assert status_group(params, results) == 1
    assert f"; log {job['log']})" in capsys.readouterr().out


def test_a_job_that_recorded_its_own_failure_shows_it_before_it_is_collected(tmp_path, tiny_group, capsys):
    """Status and collecting read an ended job alike. Before: until collected, status said that a job which had
    recorded its run's failure (a failed notebook) ended without a result."""
    params = tiny_group(seeds=SEED_ONE, grid=ONE_CONFIG)
    results, group = tmp_path / "results", tmp_path / "results" / "tiny"
    job = local_marker(dead_pid())
    claims.mark_queued(group, "noise0_seed1", job)
    own = {"status": names.FAILED, "error": "broken on purpose",
           "job": {key: job[key] for key in ("job_id", "executor", "log")}}
    run_folder.record_failure(group / "noise0_seed1", own)
    assert status_group(params, results) == 1
    assert f"failed (broken on purpose; log {job['log']})" in capsys.readouterr().out
    plan = collect(make_plan(load_group(params), group))
    assert plan.job_failed == {"noise0_seed1": own} and run_folder.read_failure(group / "noise0_seed1") == own
    assert claims.read_queued(group, "noise0_seed1") is None


@pytest.mark.slow  # executes a notebook
@pytest.mark.usefixtures("htsgd_kernel")
def test_a_debug_job_runs_in_the_driver_which_reports_its_failure_as_a_workers(tmp_path, tiny_group, capsys):
    """submitit's debug executor runs the task in this process: its job has ended when submitted, nothing is
    marked, and a failed notebook is the driver's, listed and tried again by a plain `htsgd run` as a local worker's
    is. Before: its outcome was dropped, and the run said nothing of it and exited 0. What this adds to the fast
    debug-job test below: a real kernel started inside the debug executor, and a cell that really raises."""
    notebooks = broken_notebooks(tmp_path)
    params = tiny_group(seeds=SEED_ONE, grid=ONE_CONFIG)
    results, group = tmp_path / "results", tmp_path / "results" / "tiny"
    assert run_groups([params], results, notebooks=notebooks, launcher="slurm",
                      slurm_options={"cluster": "debug"}) == 1
    out, err = capsys.readouterr()
    assert "1 notebook(s) failed" in err and f"tiny/noise0_seed1/{names.FAILED_NOTEBOOK}: " in err, err
    assert "broken on purpose" in err and "submitted" not in out
    failure = run_folder.read_failure(group / "noise0_seed1")
    assert "broken on purpose" in failure["error"] and "job" not in failure
    assert claims.read_queued(group, "noise0_seed1") is None
    assert "noise0_seed1" in make_plan(load_group(params), group).to_train


# ---------------------------------------------------------------- fault 3: markers read safely, sacct once per array

def test_a_marker_removed_between_listing_and_reading_reads_as_none(tmp_path, tiny_group, monkeypatch, capsys):
    """Before: `is_queued` tested the marker's existence, then read it, and crashed when it went in between."""
    group = tmp_path / "results" / "tiny"
    claims.mark_queued(group, "noise0_seed1", local_marker(os.getpid()))
    real = storage.read_json

    def removed_first(path, kind=dict):
        if str(path).endswith(".queued"):
            os.unlink(path)  # the job's collector got there first
        return real(path, kind)

    monkeypatch.setattr(storage, "read_json", removed_first)
    assert claims.read_queued(group, "noise0_seed1") is None
    claims.mark_queued(group, "noise0_seed1", local_marker(os.getpid()))
    assert status_group(tiny_group(), tmp_path / "results") == 0
    assert "noise0_seed1" in capsys.readouterr().out and claims.read_queued(group, "noise0_seed1") is None


class NoKernel:
    """Stands in for a worker's kernel, where the train notebook's execution is stood in for too."""

    def __init__(self, cwd, env=None):
        pass

    def take(self):
        return None

    def release(self, km, healthy=True):
        pass

    def close(self):
        pass


def train_without_a_kernel(monkeypatch, execute):
    """`local.train_one` as it is, with `execute` in place of the train notebook's execution: no kernel starts."""
    monkeypatch.setattr(local, "_kernels", {})
    monkeypatch.setattr(local, "ReusedKernel", NoKernel)
    monkeypatch.setattr(local, "execute", execute)


def stopped(notebook, output, parameters, timeout, km=None) -> dict:
    """The train notebook's execution, failing at once."""
    return {"status": names.FAILED, "error": f"stopped by the test in {parameters['run_dir']}"}


def test_a_debug_job_trains_its_pack_in_the_driver_and_marks_nothing(tmp_path, tiny_group, monkeypatch, capsys):
    """The Slurm launcher's own path (the array submitted, each task's pack trained, the job's result taken) through
    submitit's debug executor, up to the notebook (failing here, as in the slow test above)."""
    train_without_a_kernel(monkeypatch, stopped)
    params = tiny_group(seeds=SEED_ONE)
    results, group = tmp_path / "results", tmp_path / "results" / "tiny"
    ids = ["noise0_seed1", "noise1_sigma0.01_seed1"]
    assert run_groups([params], results, launcher="slurm", slurm_options={"cluster": "debug", "pack": 2}) == 1
    out, err = capsys.readouterr()
    assert "2 notebook(s) failed" in err and "submitted" not in out
    for config_id in ids:
        assert f"tiny/{config_id}/{names.FAILED_NOTEBOOK}: stopped by the test in {config_id}" in err
        assert run_folder.read_failure(group / config_id) == stopped(None, None, {"run_dir": config_id}, 0)
        assert claims.read_queued(group, config_id) is None
    assert make_plan(load_group(params), group).to_train == ids
    assert len(list((group / names.SLURM_LOGS).glob("*/*_log.out"))) == 1  # one task for the pack of two


def test_a_task_is_requeued_at_its_time_limit_only_where_its_runs_resume(tiny_group):
    """Warned before its limit (submitit's 90 s, less for a limit of a few minutes); requeued to resume from the
    run's checkpoint, never to start over and time out again."""
    assert [slurm.signal_delay(minutes) for minutes in (1, 5, 6, 60)] == [15, 75, 90, 90]
    pack = slurm.Pack(time_min=5)
    assert pack.checkpoint(load_group(tiny_group()), "group_dir") is None
    requeued = pack.checkpoint(load_group(tiny_group(every=("timeout: 600", "timeout: 600\ncheckpoint_every: 50"))),
                               "group_dir")
    assert isinstance(requeued, submitit.helpers.DelayedSubmission) and requeued.args[1] == "group_dir"


def test_training_leaves_the_marker_of_its_job(tmp_path, tiny_group, monkeypatch):
    """Before: `train_one` removed the queued marker when training started, so a task requeued after that was
    neither locked nor queued, and another driver could train the configuration too."""
    group_dir = tmp_path / "results" / "tiny"
    claims.mark_queued(group_dir, "noise0_seed1", local_marker(os.getpid()))
    seen = []

    def execute(notebook, output, parameters, timeout, km=None):
        seen.append(claims.read_queued(group_dir, "noise0_seed1"))
        return {"status": names.FAILED, "error": "stopped by the test"}

    train_without_a_kernel(monkeypatch, execute)
    group = load_group(tiny_group())
    outcome = local.train_one(group, "noise0_seed1", group_dir, tmp_path / "data", "cpu", tmp_path, "test")
    assert outcome["status"] == names.FAILED and seen == [local_marker(os.getpid())]
    assert claims.read_queued(group_dir, "noise0_seed1") == local_marker(os.getpid())
    plan = make_plan(group, group_dir)  # the job lives (it is this process): still queued, not to train
    assert "noise0_seed1" in plan.queued and "noise0_seed1" not in plan.to_train


SACCT_ARRAY = """
    123_0|RUNNING
    123_1|COMPLETED
    123_2|CANCELLED by 1000
    123_[3-4%2]|PENDING
"""


def test_status_asks_sacct_once_per_job_array(tmp_path, tiny_group, monkeypatch, capsys):
    """Before: status asked sacct (through submitit) twice per configuration."""
    log = fake_slurm(tmp_path, monkeypatch, "sacct", SACCT_ARRAY)
    params = tiny_group()
    group_dir = tmp_path / "results" / "tiny"
    ids = list(load_group(params).configs)
    for task, config_id in enumerate(ids):
        claims.mark_queued(group_dir, config_id, {
            "job_id": f"123_{task}", "executor": "slurm", "log": f"logs/slurm/123_{task}/123_{task}_0_log.err",
            "result": f"logs/slurm/123_{task}/123_{task}_0_result.pkl"})
    assert status_group(params, tmp_path / "results") == 1
    out = capsys.readouterr().out
    assert log.read_text().splitlines() == ["-j 123 -n -P -X -o JobID,State"]
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "queued (job 123_0 (slurm), log logs/slurm/123_0/123_0_0_log.err)" in lines[ids[0]]
    assert ("failed (slurm job 123_1 ended (COMPLETED) without a result; log logs/slurm/123_1/123_1_0_log.err)"
            in lines[ids[1]])
    assert "failed (slurm job 123_2 ended (CANCELLED) without a result" in lines[ids[2]]
    assert "queued (job 123_3 (slurm)" in lines[ids[3]]
    assert "tiny: 2 failed, 2 queued;" in out


def test_slurm_states_reads_sacct_as_it_prints(tmp_path, monkeypatch):
    log = fake_slurm(tmp_path, monkeypatch, "sacct", f"{SACCT_ARRAY}    123_[6,8-9]|PENDING\n    123_5|OUT_OF_MEMORY+")
    states = jobs.slurm_states("123")
    assert states == {"123_0": "RUNNING", "123_1": "COMPLETED", "123_2": "CANCELLED", "123_3": "PENDING",
                      "123_4": "PENDING", "123_5": "OUT_OF_MEMORY", "123_6": "PENDING", "123_8": "PENDING",
                      "123_9": "PENDING"}
    followed = {i: jobs.Job("slurm", f"123_{i}") for i in (0, 1, 2, 3, 5, 7)}
    jobs.follow(followed.values())
    assert {i: job.ended for i, job in followed.items()} == {0: None, 1: "COMPLETED", 2: "CANCELLED", 3: None,
                                                              5: "OUT_OF_MEMORY", 7: None}  # 7: not in sacct (yet)
    assert len(log.read_text().splitlines()) == 2  # one call each time, for the one array


def test_sacct_failing_or_missing_is_a_clear_error(tmp_path, monkeypatch):
    from htsgd.errors import UserError

    fake_slurm(tmp_path, monkeypatch, "sacct", "sacct: error: Problem talking to the database", code=1)
    with pytest.raises(UserError, match="sacct -j 123 failed: sacct: error: Problem talking to the database"):
        jobs.slurm_states("123")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="`sacct` is not on this machine's PATH"):
        jobs.slurm_states("123")


def test_squeue_says_what_a_task_waits_for_and_a_task_neither_lists_was_cancelled_before_it_started(
        tmp_path, tiny_group, monkeypatch, capsys):
    """sacct has not yet recorded a task that never started; squeue is asked, once, only where sacct has not seen every
    task end. A task listed by neither ended (Slurm 22.05 never accounts for one cancelled while pending)."""
    fake_slurm(tmp_path, monkeypatch, "sacct", "123_0|RUNNING\n123_1|COMPLETED\n123_[3-4,6]|PENDING")
    squeue = fake_slurm(tmp_path, monkeypatch, "squeue", "123_0|RUNNING|None|node7\n123_3|PENDING|Resources|\n"
                                                         "123_4|PENDING|None|")
    followed = {i: jobs.Job("slurm", f"123_{i}") for i in (0, 1, 3, 4, 5, 6)}
    jobs.follow(followed.values())
    assert {i: (job.ended, job.now) for i, job in followed.items()} == {
        0: (None, "Slurm: RUNNING on node7"), 1: ("COMPLETED", None), 3: (None, "Slurm: PENDING (Resources)"),
        4: (None, "Slurm: PENDING"), 5: (jobs.GONE, None), 6: (None, None)}  # 6: squeue lags sacct
    jobs.follow([jobs.Job("slurm", "123_1")])  # every task ended: squeue is not asked
    assert squeue.read_text().splitlines() == ["-j 123 -r -h -o %i|%T|%r|%N"]

    params, group = tiny_group(seeds=SEED_ONE, grid=ONE_CONFIG), tmp_path / "results" / "tiny"
    claims.mark_queued(group, "noise0_seed1", {"job_id": "123_3", "executor": "slurm", "log": "123_3.err"})
    assert status_group(params, tmp_path / "results") == 0
    assert "queued (job 123_3 (slurm), log 123_3.err; Slurm: PENDING (Resources))" in capsys.readouterr().out


def test_squeue_that_cannot_answer_leaves_sacct_to_decide(tmp_path, monkeypatch):
    """Slurm that holds none of the array's tasks ends those sacct does not list; squeue failing otherwise (no
    controller) ends nothing."""
    fake_slurm(tmp_path, monkeypatch, "sacct", "123_0|PENDING")
    fake_slurm(tmp_path, monkeypatch, "squeue", "slurm_load_jobs error: Invalid job id specified", code=1)
    assert [ended(job) for job in ({"job_id": "123_0", "executor": "slurm", "log": "x"},
                                   {"job_id": "123_1", "executor": "slurm", "log": "x"})] == [None, jobs.GONE]
    fake_slurm(tmp_path, monkeypatch, "squeue", "slurm_load_jobs error: Unable to contact slurm controller", code=1)
    assert ended({"job_id": "123_1", "executor": "slurm", "log": "x"}) is None


def test_local_jobs_are_followed_by_their_process(tmp_path):
    """A local job's process that has ended is seen as ended even before its parent reaps it (a zombie)."""
    live = local_marker(os.getpid())
    assert (ended(live), ended(local_marker(dead_pid()))) == (None, "ENDED")
    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while ended(local_marker(zombie.pid)) is None:
            assert time.monotonic() < deadline, "an ended, unreaped process reads as alive"
            time.sleep(0.05)
    finally:
        zombie.wait()


# ---------------------------------------------------------------- status and help stay light

def imported(args, cwd) -> set:
    """The top-level modules `htsgd <args>` imports, read from `python -X importtime`."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "htsgd.cli", *args], capture_output=True,
                          text=True, cwd=cwd)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_help_and_status_import_no_torch_submitit_or_jupyter(tmp_path, tiny_group, monkeypatch):
    fake_slurm(tmp_path, monkeypatch, "sacct", SACCT_ARRAY)
    params = tiny_group()
    group_dir = tmp_path / "results" / "tiny"
    claims.mark_queued(group_dir, "noise0_seed1", {"job_id": "123_1", "executor": "slurm", "log": "x", "result": "y"})
    claims.mark_queued(group_dir, "noise0_seed2", local_marker(os.getpid()))
    for args in (["--help"], ["status", str(params), "--results_dir", str(tmp_path / "results")]):
        modules = imported(args, tmp_path)
        assert "htsgd" in modules and not modules & HEAVY, (args, modules & HEAVY)
