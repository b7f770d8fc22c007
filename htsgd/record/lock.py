"""requirements.lock: the exact versions of the environment that made the committed records, and whether
the running environment has them.

`make lock` writes the lock (pip-compile over pyproject.toml's ranges, pinned to the versions installed);
`make setup` installs from it. A record's provenance names the lock's digest and whether every pinned package
was installed at exactly its pinned version; `htsgd status` warns when one is not. Imports no torch.
"""

import hashlib
import re
from importlib import metadata
from pathlib import Path

from packaging.version import InvalidVersion, Version

from .digests import ROOT

LOCK_FILE = ROOT / "requirements.lock"  # the one place its name is written; `path=None` below means this file
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def digest(path=None) -> str | None:
    """sha256 of the lock's bytes; None where there is no lock (an install from a wheel, say)."""
    try:
        return hashlib.sha256(Path(path or LOCK_FILE).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def pins(path=None) -> dict[str, str]:
    """{normalized name: version} for each `name==version` line; comments, annotations and options are skipped."""
    found = {}
    for line in Path(path or LOCK_FILE).read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            found[normalize(match.group(1))] = match.group(2)
    return found


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them: PyYAML, pyyaml and py_yaml are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def mismatches(path=None) -> dict[str, tuple[str, str | None]]:
    """{name: (pinned, installed or None)} for each pinned package not installed at exactly its pinned version."""
    wrong = {}
    for name, pinned in pins(path).items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or not _same(installed, pinned):
            wrong[name] = (pinned, installed)
    return wrong


def environment_matches(path=None) -> bool | None:
    """True when every pinned package is installed at its pinned version; None where there is no lock."""
    path = Path(path or LOCK_FILE)
    if not path.is_file():
        return None
    return not mismatches(path)


def describe(wrong: dict[str, tuple[str, str | None]], limit: int = 5) -> str:
    """'torch 2.5.0 (locked 2.14.1), tqdm missing (locked 4.70.1)', up to `limit` of them, then how many more."""
    named = [f"{name} {installed} (locked {pinned})" if installed else f"{name} missing (locked {pinned})"
             for name, (pinned, installed) in sorted(wrong.items())[:limit]]
    more = len(wrong) - len(named)
    return ", ".join(named) + (f" and {more} more" if more > 0 else "")


def _same(installed: str, pinned: str) -> bool:
    try:
        return Version(installed) == Version(pinned)
    except InvalidVersion:
        return installed == pinned
