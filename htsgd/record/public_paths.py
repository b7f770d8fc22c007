"""Paths and commands as a record may name them: relative, never a machine's own folders."""

import os
import sys
from pathlib import Path


def relative(path, start=".") -> str:
    """`path` relative to `start`: what the record and the messages name."""
    return os.path.relpath(path, start)


def public_path(path) -> str:
    """A path relative to the working folder, or just its name when it lies outside."""
    shown = os.path.relpath(path)
    return Path(path).name if shown.startswith("..") else shown


def command_line(argv=None) -> str:
    """The command as typed, with the program's folder dropped and absolute paths made public (`public_path`)."""
    argv = list(sys.argv if argv is None else argv)
    return " ".join([Path(argv[0]).name] + [public_path(a) if os.path.isabs(a) else a for a in argv[1:]])
