"""A group's record files: `runs.csv`, the group's provenance, and the per-run analysis cache.

`runs.csv` has one row per configuration of the current grid, rebuilt from the run folders.
`provenance.json` has one section per stage, each written only by the stage it describes: `runs`
(which training code and which devices made the runs, from the runs' own provenance), `analysis`
and `report` (the environment that last produced them, and the digest of the inputs they were
produced from, and the digest of every file they wrote: a stage is fresh only while both still hold, so an
output damaged or edited afterwards makes `htsgd run` redo the stage instead of reporting from it). The analysis
keeps each run's result
in `summary/runs/<id>.json.gz` under a key of everything it depends on, so a new seed is analysed
alone and a committed run without weights need not be trained again to be reported.
"""

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path

from ..core.config import TrainConfig
from . import run_folder, storage
from .digests import ANALYSIS, code_digest, digest, file_digest
from .names import ANALYSIS_CACHE, FIGURES, HISTORY, METRICS, PENDING, PROVENANCE, RUNS_CSV, SUMMARY, TABLES
from .public_paths import public_path

OUTCOME_COLUMNS = ["status", "steps", "wall_time", "train_acc", "test_acc", "max_train_loss_ratio", "error"]
RUN_COLUMNS = ["id", *TrainConfig.__dataclass_fields__, *OUTCOME_COLUMNS]
STAGES = ("analysis", "report")
# What each stage writes in the group's folder: its executed notebook and the folders it fills.
STAGE_OUTPUTS = {"analysis": ("analyze.ipynb", SUMMARY), "report": ("report.ipynb", TABLES, FIGURES)}


def write_runs_csv(configs: dict, group_dir: Path) -> Path:
    """`runs.csv` rebuilt from the run folders of `configs` (id -> TrainConfig); rewritten only when it changes."""
    out = io.StringIO()
    writer = csv.DictWriter(out, RUN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for config_id, config in configs.items():
        run_dir = Path(group_dir) / config_id
        row = {"id": config_id, **config.to_dict(), "status": PENDING}
        if run_folder.is_recorded(run_dir):
            metrics = run_folder.read_metrics(run_dir)
            row.update({k: metrics.get(k) for k in OUTCOME_COLUMNS if k != "error"})
        else:
            failure = run_folder.read_failure(run_dir)
            if failure is not None:
                row.update({"status": failure["status"], "error": failure["error"]})
        writer.writerow(row)
    path = Path(group_dir) / RUNS_CSV
    if not (path.is_file() and path.read_bytes() == out.getvalue().encode()):
        storage.write_text(path, out.getvalue())
    return path


def read_provenance(group_dir) -> dict:
    """The group's provenance, each stage's section a mapping whose `outputs` map file names to digests."""
    path = Path(group_dir) / PROVENANCE
    try:
        record = storage.read_json(path) if path.is_file() else {}
        for stage in STAGES:
            section = record.get(stage, {})
            if not isinstance(section, dict) or not isinstance(section.get("outputs", {}), (dict, type(None))):
                raise storage.DamagedFile(path, f"its {stage} section is not a mapping of what produced the {stage}")
    except storage.DamagedFile as err:
        raise storage.DamagedFile(path, err.reason, "Move it aside: `htsgd run` then redoes the group's analysis "
                                  "and report (the runs keep their own provenance)") from None
    return record


def stage_inputs(group_dir, stage: str) -> str | None:
    """The inputs digest the stage was last produced from (None: never, or its last attempt failed)."""
    return read_provenance(group_dir).get(stage, {}).get("inputs")


def output_digests(group_dir, stage: str) -> dict[str, str]:
    """Every file `stage` wrote (its notebook, and what its folders hold) by content; interrupted writes left out."""
    group_dir, files = Path(group_dir), []
    for name in STAGE_OUTPUTS[stage]:
        path = group_dir / name
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            files.append(path)
    return {p.relative_to(group_dir).as_posix(): file_digest(p) for p in files if not p.name.startswith(".")}


def changed_outputs(group_dir, stage: str) -> list[str]:
    """What no longer is as `stage` wrote it: each changed or missing output, named; empty while all hold."""
    recorded = read_provenance(group_dir).get(stage, {}).get("outputs")
    if not isinstance(recorded, dict):
        return [f"{PROVENANCE} records no digest of its outputs"]
    present = output_digests(group_dir, stage)
    return [f"{name} {'is missing' if name not in present else 'changed'} since the {stage} wrote it"
            for name, wanted in recorded.items() if present.get(name) != wanted]


def write_provenance(group_dir, group_name: str, params_path, runs: dict, stage: str | None = None,
                     section: dict | None = None):
    """Update the group's provenance: its `runs` section always, and `stage`'s section when given; the other
    stage's section is kept as it was, so a report never rewrites what produced the analysis."""
    record = read_provenance(group_dir)
    record.update({"group": group_name, "params": public_path(params_path), "runs": runs})
    if stage is not None:
        if stage == "analysis":
            record.pop("report", None)  # a new analysis makes the old report's inputs meaningless
        record[stage] = section
    ordered = {k: record[k] for k in ("group", "params", "runs", *STAGES) if k in record}
    storage.write_json(Path(group_dir) / PROVENANCE, ordered)


def runs_provenance(group_dir, ids) -> dict:
    """Which training code and which devices made the recorded runs: each digest and device with its count."""
    codes, devices = {}, {}
    for config_id in ids:
        path = Path(group_dir) / config_id / PROVENANCE
        if path.is_file() and run_folder.is_recorded(path.parent):
            origin = storage.read_json(path)
            code = origin.get("code_digest", "(not recorded)")
            codes[code] = codes.get(code, 0) + 1
            devices[origin.get("device", "(not recorded)")] = devices.get(origin.get("device", "(not recorded)"), 0) + 1
    return {"code_digests": codes, "devices": devices}


def outcome_digests(run_dir: Path) -> dict:
    """What a recorded run's outcome is, by content (its metrics and history); a failure by its record."""
    if run_folder.is_recorded(run_dir):
        return {name: file_digest(run_dir / name) for name in (METRICS, HISTORY) if (run_dir / name).is_file()}
    return {"failure": run_folder.read_failure(run_dir)}


def analysis_key(config: dict, run_dir: Path, settings: dict) -> str:
    """Everything one run's analysis depends on: its configuration and outcome, the settings and the analysis code."""
    return digest({"config": config, "metrics": file_digest(Path(run_dir) / METRICS), "settings": settings,
                   "code": code_digest(ANALYSIS)})


def analysis_inputs(configs: dict, group_dir: Path, settings: dict) -> str:
    """Everything the group's analysis depends on: each configuration and its outcome, the settings and the code."""
    runs = [[config_id, config.to_dict(), outcome_digests(Path(group_dir) / config_id)]
            for config_id, config in configs.items()]
    return digest({"runs": runs, "settings": settings, "code": code_digest(ANALYSIS)})


def cache_path(group_dir, config_id: str) -> Path:
    return Path(group_dir) / ANALYSIS_CACHE / f"{config_id}.json.gz"


def read_cached_analysis(group_dir, config_id: str, key: str) -> dict | None:
    """A run's cached analysis when it was made under `key`; None when absent, of another key, unreadable, or
    changed since the last analysis recorded it (an edited cache must not pass into the redone analysis)."""
    path = cache_path(group_dir, config_id)
    try:
        data = path.read_bytes()
        written = (read_provenance(group_dir).get("analysis", {}).get("outputs") or {}).get(
            path.relative_to(group_dir).as_posix())
        if written is not None and hashlib.sha256(data).hexdigest() != written:
            return None
        cached = json.loads(gzip.decompress(data))
    except (OSError, ValueError, EOFError):
        return None
    return cached["result"] if isinstance(cached, dict) and cached.get("key") == key else None


def write_cached_analysis(group_dir, config_id: str, key: str, result: dict):
    data = gzip.compress(json.dumps({"key": key, "result": result}, sort_keys=True).encode(), mtime=0)
    storage.atomic_write(cache_path(group_dir, config_id), lambda f: f.write(data))
