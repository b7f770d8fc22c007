"""Experiment groups: a params YAML file expanded into validated configurations with readable ids.

A group file holds `base` parameters, a `grid` (each list expands to the product; a list of
such mappings is the union of their products, and a mapping may give its own `seeds`) and
`seeds`. Execution settings change how runs are carried out, never what they compute, so they are
not part of a configuration: `timeout`, `checkpoint_every`, and the `slurm:` section. Every value is
checked here, with the file and key named, before anything runs.
"""

import itertools
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from ..core.config import COMPRESSION_ERROR_METRICS, PRUNING_TYPES, TrainConfig, check_known, coerce, make_config
from ..errors import UserError

GROUP_KEYS = ("description", "base", "grid", "seeds", "timeout", "checkpoint_every", "analysis", "slurm", "notes")
ANALYSIS_KEYS = {"pruning_type": PRUNING_TYPES, "compression_error_metric": COMPRESSION_ERROR_METRICS}
# Short names for the id of a configuration, in the order they appear in it.
ID_NAMES = {"model": "", "dataset": "", "iterate_noise": "noise", "iterate_noise_alpha": "alpha",
            "iterate_noise_scale": "sigma", "iterate_noise_filter": "filter", "width": "width", "depth": "depth",
            "lr": "lr", "batch_size_train": "batch", "mom": "mom", "wd": "wd", "eval_freq": "eval",
            "convergence_accuracy": "acc", "iterations": "cap", "train_size": "n",
            "train_to_cap": "tocap"}
DEFAULT_TIMEOUT = 6 * 3600
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


def load_group(path) -> Group:
    """Read, expand and validate one params file; raise one UserError naming the file, key and value."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such params file")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({err})") from None
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
    grid = _grid(spec.get("grid", {}), path, seeds)
    configs = {}
    for point, point_seeds in grid:
        for seed in point_seeds:
            values = {**base, **point, "seed": seed}
            config_id = make_id(point, seed)
            config = make_config(values, where=f"{path}: configuration {config_id}")
            if config_id in configs and configs[config_id] != config:
                raise UserError(f"{path}: two configurations get the id {config_id}; give them different grid values")
            configs[config_id] = config
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
    if key == "seed":
        raise UserError(f"{where}: seed is set by the group's `seeds` list, not as a parameter")
    coerce(key, value, where)


def _grid(grid, path, seeds) -> list[tuple[dict, list]]:
    """The grid's points with their seeds: the product of each mapping's lists, over the union of mappings.

    A mapping may give its own `seeds` (e.g. more seeds where a choice hinges on them); otherwise
    its points take the group's.
    """
    mappings = grid if isinstance(grid, list) else [grid or {}]
    points = []
    for i, mapping in enumerate(mappings):
        where = f"{path}: grid" + (f"[{i}]" if isinstance(grid, list) else "")
        if not isinstance(mapping, dict):
            raise UserError(f"{where}: expected a mapping of parameter -> list of values, got {mapping!r}")
        mapping = dict(mapping)
        point_seeds = _seeds(mapping.pop("seeds"), where) if "seeds" in mapping else seeds
        for key, values in mapping.items():
            if not isinstance(values, list):
                raise UserError(f"{where}: {key} = {values!r} must be a list of values")
            if not values:
                raise UserError(f"{where}: {key} = [] expands to nothing; give at least one value")
            for value in values:
                _check_value(key, value, where)
        keys = list(mapping)
        points += [(dict(zip(keys, combo)), point_seeds) for combo in itertools.product(*(mapping[k] for k in keys))]
    if not points:
        raise UserError(f"{path}: grid expands to nothing; give at least one value per key")
    return points


def _seeds(seeds, path) -> list[int]:
    if not isinstance(seeds, list) or not seeds:
        raise UserError(f"{path}: seeds = {seeds!r} must be a non-empty list of integers >= 0")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UserError(f"{path}: seeds contains {seed!r}; use integers >= 0")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"{path}: seeds = {seeds!r} repeats a seed")
    return seeds


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
    parts = []
    for key in sorted(point, key=order.index):
        value = point[key]
        text = str(int(value)) if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{ID_NAMES.get(key, key)}{text}")
    return "_".join(parts + [f"seed{seed}"])
