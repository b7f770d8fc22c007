"""A driver killed with SIGKILL takes its workers and their Jupyter kernels (about 0.9 GB each) with it."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from htsgd.record import names

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("htsgd_kernel")]

LONG_GROUP = """
    description: three runs that train far longer than the test waits
    timeout: 600
    base: {model: fcn, dataset: digits, width: 50, depth: 2, lr: 0.05, batch_size_train: 256, eval_freq: 10,
           convergence_accuracy: 100, iterations: 100000, train_to_cap: true}
    grid:
      - iterate_noise: [0]
    seeds: [1, 2, 3]
"""
MARK = "HTSGD_ORPHAN_TEST"  # set in the driver's environment, inherited by every process it starts


def _stat(pid) -> tuple[str, int]:
    """(state, parent pid) of a live process; the command name in parentheses may hold spaces."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return fields[0], int(fields[1])


def _processes() -> dict[int, tuple[str, int]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = _stat(entry.name)
            except (OSError, IndexError):  # ended meanwhile
                pass
    return found


def descendants(root: int) -> set[int]:
    """The processes below `root`, followed through /proc's parent links."""
    children = {}
    for pid, (_, ppid) in _processes().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def marked(mark: str) -> set[int]:
    """The live (not zombie) processes whose environment carries `mark`."""
    found = set()
    for pid, (state, _) in _processes().items():
        try:
            if state != "Z" and f"{MARK}={mark}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found.add(pid)
        except OSError:
            pass
    return found


def cmdline(pid) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "(ended)"


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="follows processes through Linux's /proc")
@pytest.mark.parametrize("workers", [2, 1])
def test_workers_and_kernels_end_with_a_killed_driver(tmp_path, workers):
    """With 2 workers the kernels are the workers' children; with 1 the driver's own."""
    params = tmp_path / "long.yaml"
    params.write_text(textwrap.dedent(LONG_GROUP))
    mark, group = uuid.uuid4().hex, tmp_path / "results" / "long"
    driver = subprocess.Popen([str(Path(sys.executable).parent / "htsgd"), "run", str(params), "--results_dir",
                               str(tmp_path / "results"), "--workers", str(workers)],
                              env={**os.environ, MARK: mark}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:  # until each worker's kernel trains
            kernels = [pid for pid in descendants(driver.pid) if "ipykernel" in cmdline(pid)]
            if len(kernels) == workers and len(list(group.glob(f"*/{names.CONFIG}"))) == workers:
                break
            assert driver.poll() is None, f"the driver ended with {driver.returncode} before its kernels trained"
            assert time.monotonic() < deadline, "the kernels never started training"
            time.sleep(0.2)
        assert set(kernels) <= marked(mark)
        driver.kill()
        driver.wait()
        deadline = time.monotonic() + 30
        while (left := marked(mark)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, "still running after the driver was killed:\n" + "\n".join(
            f"{pid}: {cmdline(pid)}" for pid in sorted(left))
    finally:
        driver.kill()
        driver.wait()
        for pid in marked(mark):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
