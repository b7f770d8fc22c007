"""Training a group's configurations: one at a time, or N at once on one machine (`Workers`, an executor whose
job has ended when `submit` returns).

Each configuration is one execution of the train notebook, written only into its own run
folder, under that run's lock (so no two processes, local or Slurm, ever train it at once).
Each worker keeps one warm kernel for its notebooks (`execution.ReusedKernel`). With N workers,
N processes take configurations as they free up;
on GPUs the workers are spread over the visible devices (`CUDA_VISIBLE_DEVICES`, several
workers may share one), on the CPU each gets its share of the cores (`OMP_NUM_THREADS`, which
sets torch's threads). Only the process that started them writes `runs.csv`. An exception in a
worker (a bug: a failed notebook is an outcome) stops the pool: nothing new starts, the running
configurations end, and the error is raised naming its configuration.
Workers and kernels end with the driver, even one killed with SIGKILL: each worker watches
that its parent is still the driver, and once it is not kills its kernels and exits
(`_watch_driver`); a kernel ends with the process that started it (see `notebook`).
"""

import atexit
import multiprocessing
import os
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from ..errors import UserError
from ..record import run_folder
from ..record.names import FAILED, FAILED_NOTEBOOK, FAILURES, METRICS, NOTEBOOK
from ..record.public_paths import relative
from . import claims
from .jobs import RAN_HERE, Executor, Job
from .notebook import FreshKernel, ReusedKernel, execute, kill_kernels

ELSEWHERE = "running elsewhere"
WATCH_INTERVAL = 0.5  # seconds between a worker's checks that its driver lives
_kernels = {}  # group folder -> ReusedKernel, one per process
_device = None  # in a worker: the device its notebooks get (`_start_worker`)


def train_one(group, config_id: str, group_dir: Path, data_dir: Path, device, notebooks: Path, command: str,
              fresh_kernels: bool = False) -> dict:
    """Execute the train notebook for one configuration under its lock; its outcome (status, steps, test acc, error)."""
    run_dir = group_dir / config_id
    try:
        with claims.hold(claims.lock_path(group_dir, config_id), command):
            if run_folder.is_recorded(run_dir):  # finished by another process since it was planned
                return _outcome(run_dir)
            kind = FreshKernel if fresh_kernels else ReusedKernel
            if not isinstance(_kernels.get(group_dir), kind):
                _kernels[group_dir] = kind(group_dir)
            kernels = _kernels[group_dir]
            parameters = {**group.configs[config_id].to_dict(), "run_dir": config_id,
                          "data_dir": relative(data_dir, group_dir), "device": device, "progress": False,
                          "command": command, "checkpoint_every": group.checkpoint_every}
            km = kernels.take()
            try:
                error = execute(notebooks / NOTEBOOK, run_dir / NOTEBOOK, parameters, group.timeout, km=km)
            except BaseException:
                kernels.release(km, healthy=False)
                raise
            kernels.release(km, healthy=error is None)
            if error is None and not run_folder.is_complete(run_dir):
                (run_dir / NOTEBOOK).replace(run_dir / FAILED_NOTEBOOK)
                error = {"status": FAILED, "error": f"the notebook finished but the run wrote no {METRICS}; "
                                                   f"see {relative(run_dir / FAILED_NOTEBOOK, group_dir)}"}
            if error is not None:
                run_folder.record_failure(run_dir, error)
                return {"id": config_id, **error}
            run_folder.clear_failure(run_dir)
            return _outcome(run_dir)
    except claims.Busy as busy:
        return {"id": config_id, "status": ELSEWHERE, "error": str(busy)}


def _outcome(run_dir: Path) -> dict:
    m = run_folder.read_metrics(run_dir)
    return {"id": run_dir.name, "status": m["status"], "steps": m["steps"], "test_acc": m["test_acc"]}


def _close_kernels():
    for kernels in _kernels.values():
        kernels.close()
    _kernels.clear()


atexit.register(_close_kernels)


def describe(outcome: dict) -> str:
    if "steps" in outcome:
        return f"{outcome['status']}, {outcome['steps']} steps, test acc {outcome['test_acc']:.2f} %"
    return f"{outcome['status']}: {outcome['error']}"


class Workers(Executor):
    """This machine's workers (`train_all`): one job, which has ended, with every configuration's outcome, when
    `submit` returns."""

    def __init__(self, workers: int = 1, fresh_kernels: bool = False):
        self.workers, self.fresh_kernels = workers, fresh_kernels
        self.where = f" on {workers} workers" if workers > 1 else ""

    def submit(self, group, group_dir, ids, data_dir, device, notebooks, command) -> list[Job]:
        outcomes = train_all(group, group_dir, ids, data_dir, device, notebooks, command, self.workers,
                             self.fresh_kernels)
        return [Job("workers", str(os.getpid()), list(ids), ended=RAN_HERE, outcomes=outcomes)]


def train_all(group, group_dir: Path, ids: list, data_dir: Path, device, notebooks: Path, command: str,
              workers: int = 1, fresh_kernels: bool = False) -> list[dict]:
    """Train `ids` with `workers` processes (1: in this one); print progress; return the outcomes."""
    outcomes, started = [], time.monotonic()

    def report(outcome, running):
        outcomes.append(outcome)
        failed = sum(o["status"] in FAILURES for o in outcomes)
        left = len(ids) - len(outcomes) - running
        print(f"[{len(outcomes)}/{len(ids)}] {outcome['id']}: {describe(outcome)} | done {len(outcomes)}, "
              f"running {running}, failed {failed}, left {left} (elapsed {clock(time.monotonic() - started)})", flush=True)

    if not ids:
        return outcomes
    if workers <= 1:
        try:
            for config_id in ids:
                report(train_one(group, config_id, group_dir, data_dir, device, notebooks, command, fresh_kernels), 0)
        finally:
            _close_kernels()
        return outcomes
    setups, slots = worker_setups(workers, device), multiprocessing.get_context("spawn").Queue()
    for slot in range(workers):
        slots.put(slot)
    todo, running, failure = iter(ids), {}, None

    def start_next():  # one configuration per free worker, none queued: after a failure nothing new starts
        config_id = next(todo, None)
        if config_id is not None:
            running[pool.submit(_train_here, group, config_id, group_dir, data_dir, notebooks, command,
                                fresh_kernels)] = config_id

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                             initargs=(slots, setups, os.getpid())) as pool:
        for _ in range(workers):
            start_next()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                config_id = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as error:  # a bug, not a failed notebook (that is an outcome): stop
                    error.add_note(f"(raised while training {config_id})")
                    failure = failure or error
                    print(f"{config_id}: raised {type(error).__name__}: {error}; nothing new starts, "
                          f"{len(running)} still running", flush=True)
                    continue
                if failure is None:
                    start_next()
                report(outcome, len(running))
    if failure is not None:
        raise failure
    return outcomes


def worker_setups(workers: int, device) -> list[tuple[dict, object]]:
    """Each worker's environment and the device its notebooks get.

    A worker sees only its own GPU (`CUDA_VISIBLE_DEVICES`), which it then calls `cuda`: `cuda` or the
    default spreads the workers round robin over this process's visible GPUs, `cuda:K` pins them all to
    the K-th of them. On the CPU each worker gets its share of the cores and the device as given.
    """
    name = str(device)
    gpus = visible_gpus() if device is None or name == "cuda" or name.startswith("cuda:") else []
    if name.startswith("cuda:"):
        index = name.removeprefix("cuda:")
        if not index.isdigit() or int(index) >= len(gpus):
            raise UserError(f"--device {device}: the visible GPUs are cuda:0 to cuda:{len(gpus) - 1}" if gpus
                            else f"--device {device}: no GPU visible")
        return [({"CUDA_VISIBLE_DEVICES": gpus[int(index)]}, "cuda")] * workers
    if gpus:
        return [({"CUDA_VISIBLE_DEVICES": gpus[slot % len(gpus)]}, device) for slot in range(workers)]
    if name == "cuda":
        raise UserError("--device cuda: no GPU visible")
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    return [({"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}, device)] * workers


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them."""
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    if named is not None:
        return [g.strip() for g in named.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def _start_worker(slots, setups, driver: int):
    """Runs once in each worker process, before any kernel starts: watch the driver, take a slot, its
    environment and device."""
    global _device
    threading.Thread(target=_watch_driver, args=(driver,), name="watch-driver", daemon=True).start()
    environment, _device = setups[slots.get()]
    os.environ.update(environment)
    own_runtime_dir()


def _watch_driver(driver: int):
    """In a worker: once its driver has died (it is reparented), kill its kernels and end it. A killed
    driver says nothing, and the worker would otherwise wait for work forever. It polls the parent pid,
    not a signal bound to the thread that started this process (as PR_SET_PDEATHSIG is)."""
    while os.getppid() == driver:
        time.sleep(WATCH_INTERVAL)
    kill_kernels()
    os._exit(1)


def _train_here(group, config_id, group_dir, data_dir, notebooks, command, fresh_kernels) -> dict:
    """`train_one` in a worker, on the device its slot was given."""
    return train_one(group, config_id, group_dir, data_dir, _device, notebooks, command, fresh_kernels)


def own_runtime_dir():
    """A Jupyter runtime folder of this process's own, so kernels started side by side never share
    connection files (papermill issue #511 is kernels racing for them and their ports)."""
    os.environ["JUPYTER_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="htsgd-jupyter-")


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
