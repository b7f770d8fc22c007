"""A dataset download that fails leaves nothing behind: no empty folders it made, nothing it did not make touched.

torchvision makes `<data_dir>/<dataset>/raw` before it tries the network; offline, that empty folder
would stay as if the data were half there.
"""

from contextlib import contextmanager
from pathlib import Path

from ..core.data import DataUnavailable


@contextmanager
def tidy_on_failure(data_dir):
    """On DataUnavailable, remove the folders made meanwhile that are still empty (deepest first), then re-raise."""
    data_dir = Path(data_dir)
    before = set(_folders(data_dir))
    try:
        yield
    except DataUnavailable:
        made = [p for p in _folders(data_dir) if p not in before]
        for folder in sorted(made, key=lambda p: len(p.parts), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
        raise


def _folders(data_dir: Path) -> list[Path]:
    """`data_dir` and every folder under it (none when it does not exist)."""
    if not data_dir.is_dir():
        return []
    return [data_dir, *(p for p in data_dir.rglob("*") if p.is_dir())]
