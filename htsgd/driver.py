"""`htsgd run`: execute an experiment group's notebooks through papermill, resumably.

For every configuration the train notebook is executed into `<group>/<id>/train.ipynb`, with
paths passed relative to the notebook's working folder (its own), so the record is relocatable.
It is executed under a temporary name and renamed when it succeeds, so a configuration is
complete exactly when its executed notebook and its metrics both exist; anything else is
redone (resuming a checkpoint if there is one). Failures are recorded and the rest goes on.
"""

import csv
import io
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

from . import storage
from .config import TrainConfig
from .data import DataUnavailable, ensure_available
from .errors import UserError
from .params import Group, load_group

KERNEL = "htsgd"
# The kernel warns at every start that its local TCP link is unencrypted; only its errors should reach the log.
KERNEL_QUIET = ["--IPKernelApp.log_level=ERROR"]
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
RUN_COLUMNS = ["id"] + [f.name for f in fields(TrainConfig)] + ["status", "steps", "wall_time", "train_acc", "test_acc", "error"]


def run_groups(paths, results_dir="results", data_dir="data", device=None, notebooks=NOTEBOOKS) -> int:
    """Validate every group and check its data, then run them all; the exit status says if anything failed."""
    groups = [load_group(p) for p in paths]
    _check_data(groups, data_dir)
    failed = []
    for group in groups:
        failed += run_group(group, Path(results_dir) / group.name, data_dir, device, notebooks)
    if failed:
        print(f"\n{len(failed)} notebook(s) failed:", file=sys.stderr)
        for notebook, error in failed:
            print(f"  {notebook}: {error}", file=sys.stderr)
        return 1
    return 0


def _check_data(groups, data_dir):
    missing = []
    for name in sorted({c.dataset for g in groups for c in g.configs.values()}):
        try:
            ensure_available(name, data_dir)
        except DataUnavailable as err:
            missing.append(f"- {name}: {err}")
    if missing:
        raise UserError("datasets missing, nothing was run:\n" + "\n".join(missing))


def run_group(group: Group, group_dir: Path, data_dir, device, notebooks) -> list:
    """Train every unfinished configuration, then analyse and report; return the failures."""
    group_dir, data_dir = Path(group_dir).resolve(), Path(data_dir).resolve()
    todo = [i for i in group.configs if not is_finished(group_dir / i)]
    print(f"{group.name}: {len(group.configs)} configurations, {len(group.configs) - len(todo)} already complete, "
          f"{len(todo)} to run -> {group_dir}", flush=True)
    failed, started = [], time.monotonic()
    for n, config_id in enumerate(todo, 1):
        run_dir = group_dir / config_id
        print(f"[{n}/{len(todo)}] {config_id} (elapsed {_clock(time.monotonic() - started)})", flush=True)
        parameters = {**group.configs[config_id].to_dict(), "run_dir": ".", "data_dir": _relative(data_dir, run_dir),
                      "device": device, "progress": False}
        error = execute(notebooks / "train.ipynb", run_dir / "train.ipynb", parameters, group.timeout)
        if error is None and not storage.is_complete(run_dir):
            error = {"status": "failed", "error": "the notebook finished without writing metrics.json"}
        if error is None:
            (run_dir / storage.FAILURE).unlink(missing_ok=True)
            m = storage.read_json(run_dir / storage.METRICS)
            print(f"    {m['status']}, {m['steps']} steps, test acc {m['test_acc']:.2f} %", flush=True)
        else:
            storage.write_json(run_dir / storage.FAILURE, error)
            failed.append((run_dir / "train.failed.ipynb", error["error"]))
            print(f"    {error['status']}: {error['error']}", flush=True)
    runs_csv = write_runs_csv(group, group_dir)
    finished = [group_dir / i / storage.METRICS for i in group.configs if is_finished(group_dir / i)]
    analysis = {**group.analysis, "data_dir": _relative(data_dir, group_dir), "device": device}
    if not finished:
        print(f"{group.name}: no finished runs to analyse", flush=True)
    elif _up_to_date(group_dir / "analyze.ipynb", [group.path, *finished]):
        print(f"{group.name}: analysis and report up to date", flush=True)
    else:
        failed += run_group_notebook(group, group_dir, "analyze", analysis, notebooks)
    if finished and not _up_to_date(group_dir / "report.ipynb", [group.path, runs_csv, group_dir / "analyze.ipynb"]):
        failed += run_group_notebook(group, group_dir, "report", {}, notebooks)
    print(f"{group.name}: finished in {_clock(time.monotonic() - started)}; record in {group_dir}", flush=True)
    return failed


def run_group_notebook(group: Group, group_dir: Path, name: str, parameters: dict, notebooks=NOTEBOOKS) -> list:
    """Execute the group-level notebook `name` (analyze or report) into the group's folder."""
    print(f"{group.name}: {name}", flush=True)
    error = execute(notebooks / f"{name}.ipynb", group_dir / f"{name}.ipynb",
                    {"group_dir": ".", **parameters}, group.timeout)
    print("    done" if error is None else f"    {error['status']}: {error['error']}", flush=True)
    return [] if error is None else [(group_dir / f"{name}.failed.ipynb", error["error"])]


def report_group(path, results_dir="results", notebooks=NOTEBOOKS) -> int:
    """`htsgd report`: rerun only a group's report notebook over the results it already has."""
    group = load_group(path)
    group_dir = (Path(results_dir) / group.name).resolve()
    if not (group_dir / "runs.csv").is_file():
        raise UserError(f"{group_dir} holds no runs.csv; run `htsgd run {path}` first")
    return 1 if run_group_notebook(group, group_dir, "report", {}, notebooks) else 0


def _up_to_date(output: Path, inputs) -> bool:
    """make's rule: `output` exists and is newer than every input (a missing input counts as newer)."""
    if not output.is_file():
        return False
    built = output.stat().st_mtime_ns
    return all(p.is_file() and p.stat().st_mtime_ns <= built for p in map(Path, inputs))


def is_finished(run_dir: Path) -> bool:
    return storage.is_complete(run_dir) and (run_dir / "train.ipynb").is_file()


def execute(notebook: Path, output: Path, parameters: dict, timeout: int):
    """Execute `notebook` into `output` (renamed into place on success); return None, or the failure."""
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel

    output.parent.mkdir(parents=True, exist_ok=True)
    running = output.with_suffix(".running.ipynb")
    try:
        papermill.execute_notebook(_relative(notebook), _relative(running), parameters=parameters, kernel_name=KERNEL,
                                   cwd=str(output.parent), execution_timeout=timeout, progress_bar=False,
                                   extra_arguments=KERNEL_QUIET)
    except NoSuchKernel:
        raise UserError(f"no Jupyter kernel named {KERNEL!r}; run `make setup` (it registers the kernel in .venv)") from None
    except Exception as err:  # the notebook's own error: record it, keep going
        if running.exists():
            running.replace(output.with_suffix(".failed.ipynb"))
        timed_out = "timeout" in type(err).__name__.lower() or "timed out" in str(err).lower()
        return {"status": "timeout" if timed_out else "failed", "error": _one_line(err)}
    running.replace(output)
    output.with_suffix(".failed.ipynb").unlink(missing_ok=True)
    return None


def _relative(path, start=".") -> str:
    """`path` relative to `start`: what the executed notebooks record, so the record names no machine's folders."""
    return os.path.relpath(path, start)


def _one_line(err) -> str:
    evalue = getattr(err, "evalue", None)
    name = getattr(err, "ename", type(err).__name__)
    text = f"{name}: {evalue}" if evalue else f"{name}: {err}"
    return " ".join(text.split())[:500]


def write_runs_csv(group: Group, group_dir: Path) -> Path:
    """`runs.csv` rebuilt from the run folders: one row per configuration, never a duplicate."""
    group_dir.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    writer = csv.DictWriter(out, RUN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for config_id, config in group.configs.items():
        run_dir = group_dir / config_id
        row = {"id": config_id, **config.to_dict(), "status": "pending"}
        if is_finished(run_dir):
            m = storage.read_json(run_dir / storage.METRICS)
            row.update({k: m[k] for k in ("status", "steps", "wall_time", "train_acc", "test_acc")})
        elif (run_dir / storage.FAILURE).is_file():
            row.update(storage.read_json(run_dir / storage.FAILURE))
        writer.writerow(row)
    path = group_dir / "runs.csv"
    if not (path.is_file() and path.read_text() == out.getvalue()):  # unchanged: keep its time for _up_to_date
        storage.write_text(path, out.getvalue())
    return path


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
