"""Experiment groups: a params YAML file expanded into validated configurations with readable ids.

A group file holds `base` parameters, a `grid` (each list expands to the product; a list of
such mappings is the union of their products, and a mapping may give its own `seeds`) and
`seeds`. Every configuration is checked here, with the file and key named, before anything runs.
"""

import itertools
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from .config import TrainConfig, check_known, coerce, make_config
from .errors import UserError

GROUP_KEYS = ("description", "base", "grid", "seeds", "timeout", "analysis", "slurm", "notes")
ANALYSIS_KEYS = {"pruning_type": ("filter", "kernel"), "compression_error_metric": ("fro_squared", "frob")}
# Short names for the id of a configuration, in the order they appear in it.
ID_NAMES = {"model": "", "dataset": "", "iterate_noise": "noise", "iterate_noise_alpha": "alpha",
            "iterate_noise_scale": "sigma", "iterate_noise_filter": "filter", "width": "width", "depth": "depth",
            "lr": "lr", "batch_size_train": "batch", "mom": "mom", "wd": "wd", "eval_freq": "eval",
            "convergence_accuracy": "acc", "iterations": "cap", "checkpoint_every": "ckpt"}
DEFAULT_TIMEOUT = 6 * 3600


@dataclass
class Group:
    name: str
    path: Path
    configs: dict  # id -> TrainConfig
    timeout: int
    analysis: dict
    slurm: dict = None  # the `slurm:` section as written (htsgd.slurm fills in the defaults)


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
    slurm = spec.get("slurm") or {}
    if not isinstance(slurm, dict):
        raise UserError(f"{path}: slurm must be a mapping of options, got {slurm!r}")
    if slurm:
        from .slurm import slurm_options
        slurm_options(slurm, str(path))  # checked now, before anything runs
    return Group(path.stem, path, configs, timeout, _analysis(spec.get("analysis") or {}, path), slurm)


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
