"""Content digests of the code each stage runs and of the files it reads: what freshness is decided by.

A number is only as new as the code that could have changed it, and no newer code than that should
redo it. So each stage has its own code: training depends on `htsgd/core/`, the module that writes
a run (`record/trained_run.py`) and the train notebook (the core's compression code is the analysis',
not training's); each run's analysis on the core and the analysis modules it runs (`analyze`,
`baseline`, `tail_index`); the report on `report/`, the verdict and the trend with width (which read
the analysis' tables, so an edit of theirs analyses nothing again) and the report notebook. A notebook counts by
its code cells other than the parameters (which a run records anyway), so neither prose nor
injected values make a stage stale. Digests are of content: a `git checkout` that leaves the files
as they were changes nothing.
"""

import hashlib
import json
from pathlib import Path

from .storage import DamagedFile, read_json

ROOT = Path(__file__).resolve().parent.parent.parent
NOTEBOOKS = ROOT / "notebooks"
TRAIN, ANALYSIS, REPORT = "train", "analysis", "report"
STAGE_CODE = {
    TRAIN: tuple(f"htsgd/core/{name}.py" for name in ("__init__", "config", "data", "models", "noise", "evaluate",
                                                          "train")) + ("htsgd/record/trained_run.py",),
    ANALYSIS: ("htsgd/core",) + tuple(f"htsgd/analysis/{name}.py" for name in ("__init__", "analyze", "baseline",
                                                                               "tail_index")),
    REPORT: ("htsgd/report",) + tuple(f"htsgd/analysis/{name}.py" for name in ("__init__", "baseline", "verdict",
                                                                              "trend")),
}
STAGE_NOTEBOOK = {TRAIN: "notebooks/train.ipynb", ANALYSIS: "notebooks/analyze.ipynb", REPORT: "notebooks/report.ipynb"}
PARAMETER_TAGS = {"parameters", "injected-parameters"}


def python_digest(stage: str, root: Path = ROOT) -> str:
    """sha256 over the stage's Python files: their paths and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in stage_files(stage, root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def stage_files(stage: str, root: Path = ROOT) -> list[Path]:
    files = []
    for entry in STAGE_CODE[stage]:
        path = root / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return sorted(set(files))


def notebook_digest(path) -> str:
    """sha256 over a notebook's code cells, parameters cells left out: equal for a template and its executions."""
    try:
        cells = read_json(path)["cells"]
        code = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells
                if c["cell_type"] == "code" and not PARAMETER_TAGS & set(c.get("metadata", {}).get("tags", []))]
        if not all(isinstance(source, str) for source in code):
            raise TypeError
    except (KeyError, TypeError, AttributeError):
        raise DamagedFile(path, "not a Jupyter notebook: no list of cells with their type and source") from None
    return hashlib.sha256(json.dumps(code).encode()).hexdigest()


def code_digest(stage: str, root: Path = ROOT) -> str:
    """The stage's code as it is on disk now: its Python files and its notebook."""
    return digest({"python": python_digest(stage, root), "notebook": notebook_digest(root / STAGE_NOTEBOOK[stage])})


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def digest(obj) -> str:
    """sha256 of a JSON-able value, independent of key order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
