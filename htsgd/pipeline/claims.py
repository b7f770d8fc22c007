"""Who is working on a group or a run right now: locks that die with their holder, and jobs' claims.

A lock is an open-file-description lock (`F_OFD_SETLK`, Linux) on a file in `results/<group>/.locks/`.
The operating system releases it when its holder ends, however it ends, so a lock left by a killed
driver or job is never mistaken for a live one: its file still names the last holder, and the next
one takes it over and says so. Unlike `flock`, such a lock can be *tested* without being taken
(`F_OFD_GETLK`), so `htsgd status` or a driver's checks never make a concurrent hold fail.

A configuration given to a job that did not end before `submit` returned (a Slurm job, or one of
submitit's local executor) is *queued*: a marker `<id>.queued` names the job, its executor and its
log (`jobs.Job.marker`), from submission until the job is seen to have ended (a requeued task stays queued).
"""

import fcntl
import os
import struct
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError
from ..record import run_folder, storage
from ..record.names import LOCKS

_FLOCK = "hhqqi"  # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)


class Busy(UserError):
    """Another live process holds the lock."""


def lock_path(group_dir, name: str) -> Path:
    return Path(group_dir) / LOCKS / f"{name}.lock"


def _whole_file(kind: int) -> bytes:
    return struct.pack(_FLOCK, kind, os.SEEK_SET, 0, 0, 0)


@contextmanager
def hold(path, holder: str):
    """Hold the lock at `path` for the block, or raise Busy naming its live holder; `holder` says who we are."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _whole_file(fcntl.F_WRLCK))
        except (BlockingIOError, PermissionError):
            raise Busy(f"{_read(fd) or 'another process'} holds {path}; wait until it ends (`htsgd status` shows what "
                       "is running), or stop it, then run again") from None
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
        os.close(fd)  # closing the open file description releases the lock


def holder(path) -> str | None:
    """Who holds the lock at `path` now (its file's text), or None when no live process does. Takes nothing."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        probe = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _whole_file(fcntl.F_WRLCK))
        if struct.unpack(_FLOCK, probe)[0] == fcntl.F_UNLCK:
            return None
        return _read(fd) or "another process"
    finally:
        os.close(fd)


def _read(fd) -> str:
    return os.pread(fd, 4096, 0).decode(errors="replace").strip()


# ---------------------------------------------------------------- jobs' claims

def queued_marker(group_dir, config_id: str) -> Path:
    return Path(group_dir) / LOCKS / f"{config_id}.queued"


def mark_queued(group_dir, config_id: str, job: dict):
    """Record that a job (`job_id`, `executor`, `log`, `result`: paths relative to the group) was given the run."""
    storage.write_json(queued_marker(group_dir, config_id), job)


def read_queued(group_dir, config_id: str) -> dict | None:
    """The job a configuration was given, or None; a marker removed meanwhile reads as None, never as an error."""
    path = queued_marker(group_dir, config_id)
    try:
        job = storage.read_json(path)
    except FileNotFoundError:
        return None
    run_folder.check_job(job, path)
    return job


def unmark_queued(group_dir, config_id: str):
    queued_marker(group_dir, config_id).unlink(missing_ok=True)
