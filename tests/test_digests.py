"""A stage's code is what its notebook imports, followed through htsgd: an edit there makes the stage stale, an edit
anywhere else leaves it up to date, and no module the stage loads is left out."""

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from htsgd.record import digests
from htsgd.record.digests import ANALYSIS, REPORT, ROOT, STAGE_NOTEBOOK, TRAIN

STAGES = (TRAIN, ANALYSIS, REPORT)
MODULES = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "htsgd").rglob("*.py"))


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the package and the notebooks, for digests taken with `root=tree`."""
    for part in ("htsgd", "notebooks"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def stage_digests(root) -> dict[str, str]:
    return {stage: digests.code_digest(stage, root) for stage in STAGES}


def append(path: Path, text: str):
    path.write_text(path.read_text() + text)


def changed_by(tree: Path, edit) -> set[str]:
    """The stages whose code digest `edit()` changes."""
    before = stage_digests(tree)
    edit()
    after = stage_digests(tree)
    return {stage for stage in STAGES if before[stage] != after[stage]}


def in_closure(module: str) -> set[str]:
    return {stage for stage in STAGES if ROOT / module in digests.stage_files(stage)}


@pytest.mark.parametrize("module", MODULES)
def test_an_edit_makes_exactly_the_stages_that_import_the_module_stale(tree, module):
    assert changed_by(tree, lambda: append(tree / module, "\n# edited\n")) == in_closure(module)


def test_the_names_that_decide_the_baseline_are_every_stages_code(tree):
    """`record/names.py` says which statuses enter the baseline median; a hand list of files once left it out."""
    assert changed_by(tree, lambda: append(tree / "htsgd/record/names.py", "\n# edited\n")) == set(STAGES)


def test_training_code_holds_the_module_that_writes_a_run():
    assert ROOT / "htsgd/record/trained_run.py" in digests.stage_files(TRAIN)


@pytest.mark.parametrize("module", ["htsgd/pipeline/status.py", "htsgd/reader/site.py", "htsgd/cli.py"])
def test_an_edit_to_what_runs_or_shows_the_stages_leaves_them_up_to_date(tree, module):
    assert changed_by(tree, lambda: append(tree / module, "\n# edited\n")) == set()


def test_a_module_imported_inside_a_function_is_part_of_the_code(tree):
    """`from ..pipeline import status` run only when a function is called still runs that module's code."""
    append(tree / "htsgd/record/names.py", "\n\ndef later():\n    from ..pipeline import status, run\n")
    assert tree / "htsgd/pipeline/status.py" in digests.stage_files(REPORT, tree)
    assert changed_by(tree, lambda: append(tree / "htsgd/pipeline/status.py", "\n# edited\n")) == set(STAGES)


def test_a_notebook_cell_with_a_magic_is_read_as_the_python_it_runs(tree):
    notebook = tree / STAGE_NOTEBOOK[ANALYSIS]
    content = json.loads(notebook.read_text())
    content["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                             "source": ["%matplotlib inline\n", "import htsgd.reader.site\n"]})
    notebook.write_text(json.dumps(content))
    assert tree / "htsgd/reader/site.py" in digests.stage_files(ANALYSIS, tree)
    assert tree / "htsgd/reader/site.py" not in digests.stage_files(REPORT, tree)


@pytest.mark.slow  # imports torch in a fresh interpreter
@pytest.mark.parametrize("stage", STAGES)
def test_every_htsgd_module_a_stage_notebook_loads_is_in_its_code(stage):
    """What the stage's kernel loads by running its notebook's imports, read from `sys.modules`, not from the source."""
    imports = [ast.unparse(node) for cell in digests.code_cells(ROOT / STAGE_NOTEBOOK[stage])
               for node in ast.parse(cell).body if isinstance(node, (ast.Import, ast.ImportFrom))]
    script = "\n".join(imports + ["import sys", "print('\\n'.join(m.__file__ for name, m in sys.modules.items() "
                                                "if name.split('.')[0] == 'htsgd'))"])
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = {Path(line).resolve() for line in done.stdout.split("\n") if line}
    assert imports and loaded
    assert loaded <= set(digests.stage_files(stage))
