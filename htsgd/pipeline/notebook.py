"""Notebooks executed through papermill, on a warm Jupyter kernel that each worker keeps.

A fresh kernel per notebook costs seconds before the first cell runs (the kernel itself, then
importing torch, torch's optimizer machinery, matplotlib and the data): on digits far more than
the training. So each worker keeps one kernel, started in the group's folder with that warm-up
done, and executes its train notebooks on it one after another, emptying its namespace between
them (`ReusedKernel`). Warm-up and reset run silently and outside the history, so each executed
notebook records what a fresh kernel would. A kernel that fails to start (for instance a port
taken by a kernel started beside it, papermill issue #511) is started again, up to
`START_ATTEMPTS` times, and never counts as a failed run.

A kernel ends with the process that started it, even one killed with SIGKILL: jupyter_client
hands it that process's pid (`JPY_PARENT_PID`) and ipykernel's parent poller exits within a
second of it changing. A worker whose driver died ends its kernels itself (`kill_kernels`).
"""

import os
import shutil
import signal
from pathlib import Path

from jupyter_client import AsyncKernelManager as KernelManager  # nbclient polls an async client: cell timeouts work
from jupyter_core.utils import run_sync

from ..errors import UserError
from ..record.public_paths import relative

KERNEL = "htsgd"
# The kernel warns at every start that its local TCP link is unencrypted, and jupyter_client interrupts it before
# each shutdown, which it may log as "ERROR | KeyboardInterrupt caught in kernel": neither is a failure, and a
# notebook's own errors reach the driver as cell errors or a dead kernel, so the kernel's log stays quiet.
# No input history database: nothing reads it, and a reused kernel's restarted prompt count would clash in it.
KERNEL_QUIET = ["--IPKernelApp.log_level=CRITICAL", "--HistoryManager.enabled=False"]
START_TIMEOUT = 180  # seconds: kernels started side by side on a busy machine can be slow
START_ATTEMPTS = 3
LOW_DISK_SPACE = 64 * 2**20  # bytes free below which a failed notebook's message says the disk is nearly full
WARM_UP = "import htsgd.pipeline.notebook\nhtsgd.pipeline.notebook.warm_up()\ndel htsgd"  # leaves the notebook's namespace empty
START_ERRORS = (RuntimeError, TimeoutError, OSError)
# Between two notebooks on one kernel: the user namespace emptied, the prompt count back at 1.
RESET = "get_ipython().run_line_magic('reset', '-f')\nget_ipython().execution_count = 1"
_started = set()  # this process's kernel managers from `start_kernel`, until shut down (`kill_kernels`)


def warm_up():
    """What a train notebook would otherwise pay first: its imports (digits' included) and torch's lazy set-up
    of the optimizer (it imports torch._dynamo, over a second) and of autograd. Global RNG state is untouched
    where it matters: training seeds torch before it builds its model."""
    import matplotlib.pyplot  # noqa: F401
    import sklearn.datasets  # noqa: F401
    import sklearn.model_selection  # noqa: F401
    import torch

    import htsgd.core.data  # noqa: F401
    import htsgd.record.trained_run  # noqa: F401  (takes the digest of the training code this kernel runs)
    from htsgd.core.train import sgd_step

    layer = torch.nn.Linear(2, 2)
    sgd_step(layer, torch.optim.SGD(layer.parameters(), lr=0.1), torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))


def start_kernel(cwd: Path, warm_up: str = WARM_UP, env: dict | None = None) -> KernelManager:
    """A ready kernel in `cwd` with `warm_up` executed; retried when it fails to start."""
    for attempt in range(1, START_ATTEMPTS + 1):
        km = KernelManager(kernel_name=KERNEL)
        try:
            run_sync(km.start_kernel)(cwd=str(cwd), extra_arguments=KERNEL_QUIET, **({"env": env} if env is not None else {}))
            _started.add(km)
            run_silently(km, warm_up)
            return km
        except START_ERRORS:
            _shut_down(km)
            if attempt == START_ATTEMPTS:
                raise


def _shut_down(km: KernelManager):
    _started.discard(km)
    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except RuntimeError:
        pass


def kill_kernels():
    """SIGKILL each running kernel from `start_kernel` with its process group (what it started, as a shutdown
    would): from any thread, for a process about to end without shutting them down. Only live kernels:
    a reaped one's pid may be another process's by now."""
    for km in list(_started):
        process = getattr(km.provisioner, "process", None)
        if process is not None and process.poll() is None:
            try:
                os.killpg(km.provisioner.pgid or process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_silently(km: KernelManager, code: str):
    """Run `code` in the kernel outside its history, and wait for it."""
    client = km.client()
    client.start_channels()
    try:
        run_sync(client.wait_for_ready)(timeout=START_TIMEOUT)
        reply = run_sync(client.execute_interactive)(code, silent=True, store_history=False, timeout=START_TIMEOUT)
    finally:
        client.stop_channels()
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"the kernel could not run {code!r}: {reply['content'].get('evalue')}")


class ReusedKernel:
    """One warm kernel kept by a worker for its notebooks, its namespace reset between them.

    `take()` returns the kernel with an empty namespace and its execution count back at 1, so a
    notebook executed on it records what a fresh kernel would; modules stay imported, and every
    run seeds its own random streams. After a failed notebook the kernel is replaced.
    """

    def __init__(self, cwd, env: dict | None = None):
        self.cwd, self.env, self.km, self.used = Path(cwd), env, None, False

    def take(self) -> KernelManager:
        if self.km is not None and not run_sync(self.km.is_alive)():
            self.km = None
        if self.km is None:
            self.km, self.used = start_kernel(self.cwd, env=self.env), False
        elif self.used:
            run_silently(self.km, RESET)
        self.used = True
        return self.km

    def release(self, km: KernelManager, healthy: bool = True):
        if not healthy:
            _shut_down(km)
            self.km = None

    def close(self):
        if self.km is not None:
            _shut_down(self.km)
            self.km = None


class FreshKernel:
    """A new kernel for every notebook, started when its turn comes with nothing imported (papermill's own way)."""

    def __init__(self, cwd, env: dict | None = None):
        self.cwd, self.env = Path(cwd), env

    def take(self) -> KernelManager:
        return start_kernel(self.cwd, warm_up="pass", env=self.env)

    def release(self, km: KernelManager, healthy: bool = True):
        _shut_down(km)

    def close(self):
        pass


def execute(notebook: Path, output: Path, parameters: dict, timeout: int, cwd=None, km=None):
    """Execute `notebook` into `output` (renamed into place on success); return None, or the notebook's failure.

    On `km` (a kernel already started in its folder) or on a new kernel started in `cwd`. Only
    the notebook's own failures are caught (an error in a cell, a cell timeout, a dead kernel);
    a kernel that fails to start is started again; anything else is a bug of the caller and
    surfaces as a traceback.
    """
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    running = output.with_suffix(".running.ipynb")
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            papermill.execute_notebook(relative(notebook), relative(running), parameters=parameters, kernel_name=KERNEL,
                                       cwd=None if km is not None else str(cwd), execution_timeout=timeout,
                                       progress_bar=False, extra_arguments=KERNEL_QUIET, start_timeout=START_TIMEOUT,
                                       **({"km": km} if km is not None else {}))
            break
        except NoSuchKernel:
            raise UserError(f"no Jupyter kernel named {KERNEL!r}; run `make setup` (it registers the kernel in .venv)") from None
        except (PapermillExecutionError, CellTimeoutError, DeadKernelError) as err:
            if running.exists():
                running.replace(output.with_suffix(".failed.ipynb"))
            return {"status": "timeout" if isinstance(err, CellTimeoutError) else "failed",
                    "error": one_line(err) + disk_space_note(output.parent)}
        except START_ERRORS:  # the kernel did not start: no cell ran
            if km is not None or attempt == START_ATTEMPTS:
                raise
    running.replace(output)
    output.with_suffix(".failed.ipynb").unlink(missing_ok=True)
    return None


def disk_space_note(folder: Path) -> str:
    """Why a notebook may have failed when its disk is (nearly) full: torch and papermill then fail with messages that
    name neither the disk nor the file (`unexpected pos 832 vs 726`)."""
    free = shutil.disk_usage(folder).free
    if free >= LOW_DISK_SPACE:
        return ""
    return (f" (the disk holding {relative(folder)} has {free // 1024} KiB free, likely why: free space there, then "
            "run the same command again)")


def one_line(err) -> str:
    evalue = getattr(err, "evalue", None)
    name = getattr(err, "ename", type(err).__name__)
    text = f"{name}: {evalue}" if evalue else f"{name}: {err}"
    return " ".join(text.split())[:500]
