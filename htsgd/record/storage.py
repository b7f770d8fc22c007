"""Files written atomically, and read with a clear error when something outside htsgd damaged them.

A result file either exists complete or not at all: everything is written to a temporary file in
the same folder and renamed into place, so a crash never leaves half a file. A file that does not
parse anyway (a disk that filled up, an edit by hand) raises `DamagedFile`, naming it.
"""

import json
import os
import tempfile
from pathlib import Path

from ..errors import UserError


class DamagedFile(UserError):
    """A record file exists but cannot be read: htsgd never writes one like that, so it was changed from outside."""

    def __init__(self, path, reason: str, todo: str = ""):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path} is damaged ({reason}); htsgd writes its files whole, so it was cut short or "
                         f"edited outside htsgd{'. ' + todo if todo else ''}")


def atomic_write(path, write) -> Path:
    """Call `write(file_object)` on a temporary file beside `path`, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path, kind=dict):
    """The JSON object in `path`; DamagedFile when it does not parse or is not a `kind`."""
    try:
        value = json.loads(Path(path).read_bytes())
    except (ValueError, UnicodeDecodeError) as err:
        raise DamagedFile(path, f"not valid JSON: {' '.join(str(err).split())[:120]}") from None
    if not isinstance(value, kind):
        raise DamagedFile(path, f"expected a JSON {kind.__name__}, found {type(value).__name__}")
    return value
