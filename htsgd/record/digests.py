"""Content digests of the code each stage runs and of the files it reads: what freshness is decided by.

A number is only as new as the code that could have changed it, and no newer code than that should
redo it. So a stage's code is its notebook and the `htsgd` modules that notebook's code imports,
followed from import to import (relative ones, submodules named by `from . import x`, imports inside
functions and the packages on the way): read from the source each time, so it follows the imports
and no list can fall behind them. A notebook counts by its code cells other than the parameters
(which a run records anyway), so neither prose nor injected values make a stage stale. Digests are
of content: a `git checkout` that leaves the files as they were changes nothing.
"""

import ast
import functools
import hashlib
import json
from pathlib import Path

from .storage import DamagedFile, read_json

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGE = __name__.partition(".")[0]
NOTEBOOKS = ROOT / "notebooks"
TRAIN, ANALYSIS, REPORT = "train", "analysis", "report"
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
    """The stage's Python files: every `htsgd` module its notebook's code imports, directly or through another."""
    # IPython takes longer to import than the rest of this module; only here is it needed, to read magics as Python.
    from IPython.core.inputtransformer2 import TransformerManager

    as_python = TransformerManager().transform_cell
    notebook = STAGE_NOTEBOOK[stage]
    pending = [name for number, source in enumerate(code_cells(root / notebook), 1)
               for name in imported_modules(as_python(source), f"{notebook} code cell {number}", "")]
    seen, files = set(), []
    while pending:
        name = pending.pop()
        path = None if name in seen else module_file(name, root)
        seen.add(name)
        if path is not None:
            files.append(path)
            relative = path.relative_to(root)
            pending += imported_modules(path.read_bytes(), relative.as_posix(), ".".join(relative.parts[:-1]))
    return sorted(files)


@functools.cache
def imported_modules(source: str | bytes, filename: str, package: str) -> tuple[str, ...]:
    """Each module an import anywhere in `source` may load, with the packages above it; `package` (the importing
    module's) anchors relative ones. `from a import b` may load the module `a.b`; when `b` is a name defined in `a`,
    no file is found for it. Kept by content: a stage's digest is taken for each run analysed, and parsing is most
    of it."""
    names = []
    for node in import_statements(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        else:
            base = absolute_module(node, package)
            names += [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return tuple(".".join(name.split(".")[:end]) for name in names for end in range(1, name.count(".") + 2))


def import_statements(node: ast.AST):
    """The import statements under `node` at any depth. Statements hold statements, never expressions do: reading
    only statements (and the handlers and cases that hold some) finds all of them in a fraction of the tree."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
            yield from import_statements(child)


def absolute_module(node: ast.ImportFrom, package: str) -> str:
    """The module a `from ... import` reads from, a relative one anchored at the importing module's `package`."""
    if not node.level:
        return node.module
    anchor = package.rsplit(".", node.level - 1)[0]
    return f"{anchor}.{node.module}" if node.module else anchor


def module_file(name: str, root: Path) -> Path | None:
    """The source file of module `name` under `root` when it is one of htsgd's, else None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    for path in (root.joinpath(*parts, "__init__.py"), root.joinpath(*parts[:-1], f"{parts[-1]}.py")):
        if path.is_file():
            return path
    return None


def code_cells(path) -> list[str]:
    """The source of a notebook's code cells, parameters cells left out."""
    try:
        cells = read_json(path)["cells"]
        code = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells
                if c["cell_type"] == "code" and not PARAMETER_TAGS & set(c.get("metadata", {}).get("tags", []))]
        if not all(isinstance(source, str) for source in code):
            raise TypeError
    except (KeyError, TypeError, AttributeError):
        raise DamagedFile(path, "not a Jupyter notebook: no list of cells with their type and source") from None
    return code


def notebook_digest(path) -> str:
    """sha256 over a notebook's code cells, parameters cells left out: equal for a template and its executions."""
    return hashlib.sha256(json.dumps(code_cells(path)).encode()).hexdigest()


def code_digest(stage: str, root: Path = ROOT) -> str:
    """The stage's code as it is on disk now: its Python files and its notebook."""
    return digest({"python": python_digest(stage, root), "notebook": notebook_digest(root / STAGE_NOTEBOOK[stage])})


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def digest(obj) -> str:
    """sha256 of a JSON-able value, independent of key order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
