"""Experiment groups: a params YAML file expanded into validated configurations with readable ids.

A group file holds `base` parameters, a `grid` (each list expands to the product; a list of
such mappings is the union of their products, and a mapping may give its own `seeds`) and
`seeds`. Execution settings change how runs are carried out, never what they compute, so they are
not part of a configuration: `timeout`, `checkpoint_every`, and the `slurm:` section. Every value is
checked here, with the file and key named, before anything runs: that training can run it, that it is given once,
and that the folders named after it stay inside the results folder. A grid of more than LARGE_GRID
configurations is refused before it is expanded, unless asked for.
"""

import itertools
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from ..core.config import COMPRESSION_ERROR_METRICS, PRUNING_TYPES, TrainConfig, check_known, coerce, make_config
from ..errors import UserError
from ..record.names import ANALYSIS_CACHE, FIGURES, LOCKS, SLURM_LOGS, SUMMARY, TABLES

GROUP_KEYS = ("description", "base", "grid", "seeds", "timeout", "checkpoint_every", "analysis", "slurm", "notes")
ANALYSIS_KEYS = {"pruning_type": PRUNING_TYPES, "compression_error_metric": COMPRESSION_ERROR_METRICS}
# Short names for the id of a configuration, in the order they appear in it.
ID_NAMES = {"model": "", "dataset": "", "iterate_noise": "noise", "iterate_noise_alpha": "alpha",
            "iterate_noise_scale": "sigma", "iterate_noise_filter": "filter", "width": "width", "depth": "depth",
            "lr": "lr", "batch_size_train": "batch", "mom": "mom", "wd": "wd", "eval_freq": "eval",
            "convergence_accuracy": "acc", "iterations": "cap", "train_size": "n",
            "train_to_cap": "tocap"}
DEFAULT_TIMEOUT = 6 * 3600
# Configurations a grid may expand to without --large_grid: more take minutes and gigabytes to plan.
LARGE_GRID = 10_000
WRITTEN_FOLDERS = (SUMMARY, ANALYSIS_CACHE, TABLES, FIGURES, LOCKS, SLURM_LOGS.split("/")[0], SLURM_LOGS)
# A group's and a run's folder name: a plain name, never a path.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
NAME_RULE = "letters, digits and . _ + -, starting with a letter or digit, without '..'"
# The `slurm:` section of a params file, or the matching flags: key -> (type, default, meaning)
SLURM_OPTIONS = {
    "cluster": (str, "slurm", "slurm; or local / debug: the same path run by submitit on this machine, on purpose"),
    "partition": (str, None, "Slurm partition"),
    "account": (str, None, "Slurm account"),
    "time_min": (int, 240, "time limit of one task, in minutes"),
    "gpus_per_task": (int, 1, "GPUs per task"),
    "cpus_per_task": (int, 4, "CPU cores per task"),
    "mem_gb": (int, 16, "memory per task, in GB"),
    "pack": (int, 1, "configurations trained one after another by one task"),
    "array_parallelism": (int, 64, "tasks of the array running at once"),
    "setup": (list, [], "shell lines run before each task, e.g. activating the environment"),
}
CLUSTERS = ("slurm", "local", "debug")


@dataclass
class Group:
    name: str
    path: Path
    configs: dict  # id -> TrainConfig
    timeout: int
    analysis: dict
    slurm: dict  # the `slurm:` section over its defaults, checked
    checkpoint_every: int = 0  # steps between resumable checkpoints (0: none); changes no result


def load_group(path, large_grid: bool = False) -> Group:
    """Read, expand and validate one params file; raise one UserError naming the file, key and value.
    `large_grid` lets a grid expand to more than LARGE_GRID configurations."""
    path = Path(path)
    spec = _read(path)
    if not _safe_name(path.stem):
        raise UserError(f"{path}: the group name {path.stem!r} (the file's name without .yaml) names the group's "
                        f"results folder; use {NAME_RULE}")
    if not isinstance(spec, dict):
        raise UserError(f"{path}: expected a mapping with keys {', '.join(GROUP_KEYS)}")
    for key in spec:
        check_known(key, GROUP_KEYS, f"{path}", list_allowed=True)
    base = spec.get("base") or {}
    if not isinstance(base, dict):
        raise UserError(f"{path}: base must be a mapping of training parameters, got {base!r}")
    for key, value in base.items():
        _check_value(key, value, f"{path}: base")
    seeds = _seeds(spec.get("seeds", [TrainConfig.seed]), path)
    configs = _configs(base, _grid(spec.get("grid", {}), path, seeds, large_grid), path)
    timeout = spec.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise UserError(f"{path}: timeout = {timeout!r} is not allowed; use whole seconds >= 1")
    checkpoint_every = spec.get("checkpoint_every", 0)
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 0:
        raise UserError(f"{path}: checkpoint_every = {checkpoint_every!r} is not allowed; use 0 (never) or steps >= 1")
    slurm = spec.get("slurm") or {}
    if not isinstance(slurm, dict):
        raise UserError(f"{path}: slurm must be a mapping of options, got {slurm!r}")
    return Group(path.stem, path, configs, timeout, _analysis(spec.get("analysis") or {}, path),
                 slurm_options(slurm, f"{path}"), checkpoint_every)


def _read(path: Path):
    """The params file's YAML, or one line saying why it does not read."""
    if not path.is_file():
        raise UserError(f"{path}: no such params file")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not a text file (byte {err.start} is not UTF-8); a params file is YAML "
                        "text") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None


def _configs(base: dict, grid: list, path) -> dict:
    """Each grid point with each of its seeds over `base`, by id; a configuration given twice is refused, as
    `seeds` refuses a repeated seed, since it would be trained twice and counted twice."""
    keys = sorted({key for point, _, _ in grid for key in point})
    configs, given = {}, {}
    for point, point_seeds, label in grid:
        for seed in point_seeds:
            config_id = make_id(point, seed)
            where = f"{path}: configuration {config_id}"
            config = make_config({**base, **point, "seed": seed}, where=where)
            same = (*(getattr(config, key) for key in keys), seed)
            if same in given:
                first_point, first_label = given[same]
                raise UserError(f"{path}: {label} gives {_describe(point)} (seed {seed}), the same configuration as "
                                f"{first_label} gives with {_describe(first_point)}; give each configuration once")
            if config_id in configs:
                raise UserError(f"{path}: two configurations get the id {config_id}; give them different grid values")
            given[same] = point, label
            configs[config_id] = config
    return configs


def _describe(point: dict) -> str:
    return ", ".join(f"{key} = {value!r}" for key, value in point.items()) or "the base parameters"


def group_folder(results_dir, group: Group) -> Path:
    """`<results_dir>/<group>`, refused unless it resolves to that very folder and none of the folders the pipeline
    writes in it (a run's, the analysis', the report's, the locks') is a link: a link must not make the pipeline
    write elsewhere, and a record can carry links (git keeps them)."""
    folder = Path(results_dir) / group.name
    if folder.resolve() != Path(results_dir).resolve() / group.name:
        raise UserError(f"{folder}: leads to {folder.resolve()}, not a folder directly in {results_dir}; the group of "
                        f"{group.path} writes only there: remove the link, or pass another --results_dir")
    linked = next((p for p in (folder / name for name in (*WRITTEN_FOLDERS, *group.configs)) if p.is_symlink()), None)
    if linked is not None:
        raise UserError(f"{linked} is a link to {linked.resolve()}; htsgd writes only inside {folder}: replace the "
                        "link with the folder it points to (or move it away), then run again")
    return folder


def slurm_options(section: dict | None, where: str, defaults: dict | None = None) -> dict:
    """The options of a `slurm:` section (or of the --slurm flags) over `defaults` (SLURM_OPTIONS'), checked."""
    chosen = dict(defaults) if defaults else {key: default for key, (_, default, _) in SLURM_OPTIONS.items()}
    for key, value in (section or {}).items():
        if key not in SLURM_OPTIONS:
            raise UserError(f"{where}: slurm.{key} is not an option; allowed: {', '.join(SLURM_OPTIONS)}")
        kind, _, meaning = SLURM_OPTIONS[key]
        if kind is list:
            if not (isinstance(value, list) and all(isinstance(line, str) for line in value)):
                raise UserError(f"{where}: slurm.{key} = {value!r} must be a list of shell lines")
        elif value is not None and (isinstance(value, bool) or not isinstance(value, kind)
                                    or (kind is int and value < (0 if "gpus" in key else 1))):
            raise UserError(f"{where}: slurm.{key} = {value!r} is not allowed; use "
                            f"{'a whole number' if kind is int else 'a string'} ({meaning})")
        chosen[key] = value
    if chosen["cluster"] not in CLUSTERS:
        raise UserError(f"{where}: slurm.cluster = {chosen['cluster']!r} is not allowed; use {', '.join(CLUSTERS)}")
    return chosen


def _check_value(key, value, where):
    """`value` as field `key` holds it, or a UserError."""
    if key == "seed":
        raise UserError(f"{where}: seed is set by the group's `seeds` list, not as a parameter")
    return coerce(key, value, where)


def _grid(grid, path, seeds, large_grid: bool) -> list[tuple[dict, list, str]]:
    """The grid's points with their seeds and the mapping they come from: the product of each mapping's lists,
    over the union of mappings. Counted first, so that a grid too large to plan is refused before it is expanded.

    A mapping may give its own `seeds` (e.g. more seeds where a choice hinges on them); otherwise
    its points take the group's.
    """
    mappings = grid if isinstance(grid, list) else [grid or {}]
    checked = [_mapping(m, path, f"grid[{i}]" if isinstance(grid, list) else "grid", seeds)
               for i, m in enumerate(mappings)]
    size = sum(math.prod(map(len, mapping.values())) * len(point_seeds) for mapping, point_seeds, _ in checked)
    if size > LARGE_GRID and not large_grid:
        raise UserError(f"{path}: grid expands to {size} configurations; pass --large_grid to run it "
                        f"(without it, at most {LARGE_GRID})")
    points = [(dict(zip(mapping, combo)), point_seeds, label)
              for mapping, point_seeds, label in checked for combo in itertools.product(*mapping.values())]
    if not points:
        raise UserError(f"{path}: grid expands to nothing; give at least one value per key")
    return points


def _mapping(mapping, path, label: str, seeds) -> tuple[dict, list, str]:
    """One grid mapping's lists, checked, with its seeds."""
    where = f"{path}: {label}"
    if not isinstance(mapping, dict):
        raise UserError(f"{where}: expected a mapping of parameter -> list of values, got {mapping!r}")
    mapping = dict(mapping)
    point_seeds = _seeds(mapping.pop("seeds"), where) if "seeds" in mapping else seeds
    for key, values in mapping.items():
        _check_values(key, values, where)
    return mapping, point_seeds, label


def _check_values(key, values, where):
    """A grid list: each value valid, given once (as a field holds it: 500 and 500.0 are one width), and fit to
    name run folders by."""
    if not isinstance(values, list):
        raise UserError(f"{where}: {key} = {values!r} must be a list of values")
    if not values:
        raise UserError(f"{where}: {key} = [] expands to nothing; give at least one value")
    given = set()
    for value in values:
        held = _check_value(key, value, where)
        if held in given:
            raise UserError(f"{where}: {key} lists {value!r} more than once; give each value once")
        given.add(held)
        if not _safe_name(part := _id_part(key, value)):
            raise UserError(f"{where}: {key} = {value!r} cannot be part of a run folder's name ({part!r}); "
                            f"use {NAME_RULE}")


def _safe_name(name: str) -> bool:
    return SAFE_NAME.fullmatch(name) is not None and ".." not in name


def _seeds(seeds, path) -> list[int]:
    if not isinstance(seeds, list) or not seeds:
        raise UserError(f"{path}: seeds = {seeds!r} must be a non-empty list of integers >= 0")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UserError(f"{path}: seeds contains {seed!r}; use integers >= 0")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"{path}: seeds = {seeds!r} repeats a seed")
    return seeds


def read_analysis(path) -> dict:
    """The `analysis:` settings of a params file, checked as `load_group` checks them but without expanding its grid
    (how the group's runs were analysed, for a reader of the record); their defaults where the file or key is absent."""
    path = Path(path)
    spec = _read(path) if path.is_file() else {}
    if not isinstance(spec, dict):
        raise UserError(f"{path}: expected a mapping with keys {', '.join(GROUP_KEYS)}")
    return _analysis(spec.get("analysis") or {}, path)


def _analysis(analysis, path) -> dict:
    if not isinstance(analysis, dict):
        raise UserError(f"{path}: analysis must be a mapping, got {analysis!r}")
    chosen = {key: allowed[0] for key, allowed in ANALYSIS_KEYS.items()}
    for key, value in analysis.items():
        check_known(key, tuple(ANALYSIS_KEYS), f"{path}: analysis", list_allowed=True)
        if value not in ANALYSIS_KEYS[key]:
            raise UserError(f"{path}: analysis.{key} = {value!r} is not allowed; use one of {', '.join(ANALYSIS_KEYS[key])}")
        chosen[key] = value
    return chosen


def make_id(point: dict, seed: int) -> str:
    """A readable id from the grid values that vary, in a fixed order, then the seed."""
    order = [f.name for f in fields(TrainConfig)]
    return "_".join([_id_part(key, point[key]) for key in sorted(point, key=order.index)] + [f"seed{seed}"])


def _id_part(key: str, value) -> str:
    """The part of an id that names one grid value: safe parts joined by '_' make a safe folder name."""
    text = str(int(value)) if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)
    return f"{ID_NAMES.get(key, key)}{text}"
