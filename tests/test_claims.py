"""Locks: a check (`holder`) takes nothing, so it never makes a trainer's hold fail."""

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from htsgd.pipeline import claims

CHECKER = """
    import sys, time
    sys.path.insert(0, {tests!r})
    from {module} import {check} as check
    print("ready", flush=True)
    checks, end = 0, time.monotonic() + {seconds}
    while time.monotonic() < end:
        check({path!r})
        checks += 1
    print(checks, flush=True)
"""


def _holds_refused(path: Path, module: str, check: str, take, seconds: float = 2.0) -> tuple[int, int, int]:
    """Take and release the lock at `path` over and over while another process runs `module.check(path)`
    in a tight loop; (holds refused, holds taken, checks made)."""
    code = textwrap.dedent(CHECKER).format(tests=str(Path(__file__).parent), module=module, check=check,
                                           seconds=seconds, path=str(path))
    checker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert checker.stdout.readline().strip() == "ready"
    refused = taken = 0
    while checker.poll() is None:
        if take(path):
            taken += 1
        else:
            refused += 1
    return refused, taken, int(checker.stdout.read())


def _take(path) -> bool:
    try:
        with claims.hold(path, "a trainer"):
            return True
    except claims.Busy:
        return False


def test_checking_a_lock_never_makes_a_concurrent_hold_fail(tmp_path):
    path = tmp_path / "noise0_seed1.lock"
    assert _take(path)  # the file exists: every check probes a real lock
    refused, taken, checks = _holds_refused(path, "htsgd.pipeline.claims", "holder", _take)
    assert refused == 0 and taken > 200 and checks > 200, (refused, taken, checks)


def _old_check(path) -> bool:
    """The lock's check before OFD locks (commit 7892133): it tested the lock by taking it."""
    path = Path(path)
    if not path.is_file():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _old_take(path) -> bool:
    """What `locks.hold` did before OFD locks: flock, Busy when another open file holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_the_old_flock_check_did_make_holds_fail(tmp_path):
    """The race the test above guards against, as the code before OFD locks had it."""
    path = tmp_path / "noise0_seed1.lock"
    assert _old_take(path)
    refused, taken, checks = _holds_refused(path, "test_claims", "_old_check", _old_take)
    assert refused > 0, (refused, taken, checks)


def test_holder_names_a_live_holder_and_none_once_it_is_killed(tmp_path):
    path = tmp_path / "driver.lock"
    assert claims.holder(path) is None  # no file yet
    holder = subprocess.Popen([sys.executable, "-c", "from htsgd.pipeline import claims; import time\n"
                               f"with claims.hold({str(path)!r}, 'htsgd run tiny.yaml'):\n"
                               "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        who = claims.holder(path)
        assert who.startswith(f"pid {holder.pid} since ") and who.endswith(": htsgd run tiny.yaml")
        assert claims.holder(path) == who  # checking took nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert claims.holder(path) is None
    assert path.read_text().startswith(f"pid {holder.pid} ")  # the dead holder's name stays, for the next one to say
