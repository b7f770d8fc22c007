"""Who is working on a group or a run right now: advisory file locks that die with their holder.

`flock` locks are released by the operating system when the process holding them ends, however
it ends, so a lock left by a killed driver or job is never mistaken for a live one: its file
still names the last holder, and the next one takes it over and says so. Lock files live in
`results/<group>/.locks/`, out of the record.
"""

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

LOCKS = ".locks"


class Busy(UserError):
    """Another live process holds the lock."""


def lock_path(group_dir, name: str) -> Path:
    return Path(group_dir) / LOCKS / f"{name}.lock"


@contextmanager
def hold(path, holder: str):
    """Hold the lock at `path` for the block, or raise Busy naming its live holder; `holder` says who we are."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"{_read(fd) or 'another process'} holds {path}") from None
        previous = _read(fd)
        if previous:
            print(f"note: a lock left by a process that ended ({previous}) was taken over", flush=True)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}: {holder}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a clean release leaves nothing to take over
    finally:
        os.close(fd)


def is_held(path) -> bool:
    """Whether a live process holds the lock at `path` (checked without keeping it)."""
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


def _read(fd) -> str:
    return os.pread(fd, 4096, 0).decode(errors="replace").strip()
