"""One training configuration: its fields, defaults, help and validation.

The field names are the original `main.py` flags, so a command line of the authors' code
works with `htsgd train` in its place. The same table drives the command line, the params
files and the notebooks, and every value is checked here before any compute starts.
"""

import difflib
import math
from dataclasses import asdict, dataclass, fields

from ..errors import UserError
from .datasets import DATASETS

MODELS = ("fcn", "vgg11_wide")
# How the analysis matricizes a convolution, and measures the share a pruning removes (first: a group's default).
PRUNING_TYPES = ("filter", "kernel")
COMPRESSION_ERROR_METRICS = ("fro_squared", "frob")
# The training code seeds a torch generator, which takes seeds below 2**64, with seed * SEED_STRIDE + epoch, an epoch
# being at most the step cap (core.train.epoch_order; a test checks the limit against it).
SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class NoiseType:
    """What a noise type adds to every hidden weight at each step: validation offers the types, `core.noise` draws
    exactly this, scaled by sigma * lr**(1/alpha).

    `per`: "unit", one draw per hidden unit (a Linear weight's row; a convolution's (out, in) kernel, or for plain
    draws with iterate_noise_filter its output filter) added to all its entries; "entry", one per entry; "" for none.
    Plain draws are symmetric alpha-stable S(alpha, 0, 1), whose alpha = 2 law is its alpha -> 2 limit N(0, 2).
    `elliptic`: instead a standard Gaussian per entry times sqrt(A), one A ~ S(alpha/2, 1, cos(pi alpha/4)**(2/alpha))
    per unit, marginally S(alpha, 0, 1/sqrt(2)); defined for alpha < 2.
    """
    label: str
    per: str
    elliptic: bool = False


NO_NOISE = 0
NOISE_TYPES = {
    NO_NOISE: NoiseType("none", per=""),
    1: NoiseType("one alpha-stable scalar per hidden unit", per="unit"),
    2: NoiseType("i.i.d. alpha-stable entries", per="entry"),
    3: NoiseType("elliptic (sub-Gaussian) alpha-stable per unit", per="unit", elliptic=True),
}


class ConfigError(UserError):
    """A parameter is unknown, of the wrong type, out of range or impossible with another."""


@dataclass
class TrainConfig:
    iterate_noise: int = 0
    iterate_noise_scale: float = 1.0
    iterate_noise_alpha: float = 1.9
    iterate_noise_filter: bool = False
    model: str = "fcn"
    width: int = 100
    depth: int = 2
    dataset: str = "mnist"
    lr: float = 0.1
    batch_size_train: int = 100
    mom: float = 0.0
    wd: float = 0.0
    seed: int = 0
    eval_freq: int = 200
    convergence_accuracy: float = 95.0
    iterations: int = 100_000
    train_size: int = 0
    train_to_cap: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


HELP = {
    "iterate_noise": "noise added after every step: " + "; ".join(f"{t} {kind.label}" for t, kind in NOISE_TYPES.items()),
    "iterate_noise_scale": "sigma; each step's noise is scaled by sigma * lr**(1/alpha)",
    "iterate_noise_alpha": "tail index alpha in (0, 2]",
    "iterate_noise_filter": "CNN type-1 noise: one scalar per output filter instead of per kernel",
    "model": "fcn or vgg11_wide",
    "width": "FCN hidden width n",
    "depth": "FCN depth: number of hidden layers + 1",
    "dataset": ", ".join(DATASETS),
    "lr": "SGD step size",
    "batch_size_train": "training batch size",
    "mom": "SGD momentum",
    "wd": "SGD weight decay",
    "seed": "seed for initialisation, batches and noise",
    "eval_freq": "evaluate on the full train and test sets every k steps",
    "convergence_accuracy": "stop once full-train-set accuracy (%%) reaches this",
    "iterations": "hard cap on steps",
    "train_size": "0: the whole training split; n: a fixed stratified subset of n training examples, the same "
                  "for every seed and run (trained on, and evaluated as the train set)",
    "train_to_cap": "train for exactly `iterations` steps: reaching convergence_accuracy does not stop the run, "
                    "and a run that reaches the cap ends with status completed (the fixed-step arm)",
}

# key -> (predicate, what is allowed)
RULES = {
    "iterate_noise": (lambda v: v in NOISE_TYPES, f"one of {', '.join(map(str, NOISE_TYPES))}"),
    "iterate_noise_scale": (lambda v: v >= 0, "a number >= 0"),
    "iterate_noise_alpha": (lambda v: 0 < v <= 2, "a number in (0, 2]"),
    "model": (lambda v: v in MODELS, f"one of {', '.join(MODELS)}"),
    "width": (lambda v: v >= 1, "an integer >= 1"),
    "depth": (lambda v: v >= 2, "an integer >= 2 (depth = hidden layers + 1)"),
    "dataset": (lambda v: v in DATASETS, f"one of {', '.join(DATASETS)}"),
    "lr": (lambda v: v > 0, "a number > 0"),
    "batch_size_train": (lambda v: v >= 1, "an integer >= 1"),
    "mom": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "wd": (lambda v: v >= 0, "a number >= 0"),
    "seed": (lambda v: v >= 0, "an integer >= 0"),
    "eval_freq": (lambda v: v >= 1, "an integer >= 1"),
    "convergence_accuracy": (lambda v: 0 < v <= 100, "a number in (0, 100]"),
    "iterations": (lambda v: v >= 1, "an integer >= 1"),
    "train_size": (lambda v: v >= 0, "0 (the whole training split) or an integer >= 1"),
}

FIELD_TYPES = {f.name: f.type if isinstance(f.type, str) else f.type.__name__ for f in fields(TrainConfig)}


def check_known(key, allowed, where: str, list_allowed: bool = False):
    """Raise a ConfigError for a key not in `allowed`, suggesting the closest one."""
    if key not in allowed:
        close = difflib.get_close_matches(str(key), list(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        listed = f"; allowed: {', '.join(allowed)}" if list_allowed else ""
        raise ConfigError(f"{where}: unknown key {key!r}{hint}{listed}")


def coerce(key: str, value, where: str = "config"):
    """`value` as the type of field `key`, or a ConfigError naming where it came from."""
    check_known(key, FIELD_TYPES, where)
    kind = FIELD_TYPES[key]
    bad = ConfigError(f"{where}: {key} = {value!r} is not {_type_name(kind)}"
                      + (" (YAML reads a number as a string unless it has a dot and a signed exponent: "
                         "write 1.0e-3 or 1.0e+20, not 1e-3 or 1.0e20)" if isinstance(value, str) and kind == "float" else ""))
    if kind in ("bool", "str"):
        if not isinstance(value, bool if kind == "bool" else str):
            raise bad
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise bad
        return int(value)
    if not math.isfinite(value):
        raise bad
    return float(value)


def _type_name(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}[kind]


def make_config(values: dict, where: str = "config") -> TrainConfig:
    """A validated TrainConfig from a mapping of field names to values."""
    config = TrainConfig(**{key: coerce(key, value, where) for key, value in values.items()})
    validate(config, where)
    return config


def validate(config: TrainConfig, where: str = "config") -> TrainConfig:
    """Check ranges, combinations and what training can run; raise one ConfigError naming the key, value and what is
    allowed."""
    for key, (allowed, text) in RULES.items():
        value = getattr(config, key)
        if not allowed(value):
            raise ConfigError(f"{where}: {key} = {value!r} is not allowed; use {text}")
    if NOISE_TYPES[config.iterate_noise].elliptic and config.iterate_noise_alpha == 2:
        raise ConfigError(f"{where}: iterate_noise_alpha = 2.0 with iterate_noise = {config.iterate_noise}: the elliptic "
                          "noise's mixing law degenerates at alpha = 2; use alpha < 2, or type 1 or 2 for Gaussian noise")
    check_trainable(config, where)
    if config.iterate_noise_filter and config.model != "vgg11_wide":
        raise ConfigError(f"{where}: iterate_noise_filter = True needs model = vgg11_wide (got {config.model!r})")
    images_32 = [name for name, spec in DATASETS.items() if spec.input_shape[1:] == (32, 32)]
    if config.model == "vgg11_wide" and config.dataset not in images_32:
        raise ConfigError(f"{where}: model = vgg11_wide needs 32x32 images (dataset {' or '.join(images_32)}), "
                          f"not dataset = {config.dataset!r}")
    return config


def check_trainable(config: TrainConfig, where: str):
    """Refuse a seed beyond what torch takes, or a train_size that no stratified subset of the dataset has."""
    limit = max_seed(config.iterations)
    if config.seed > limit:
        raise ConfigError(f"{where}: seed = {config.seed} is not allowed with iterations = {config.iterations}; use an "
                          f"integer from 0 to {limit} (training seeds torch with seed * {SEED_STRIDE} + epoch, "
                          "which must stay below 2**64)")
    classes, total = DATASETS[config.dataset].classes, DATASETS[config.dataset].train_size
    if config.train_size > total:
        raise ConfigError(f"{where}: train_size = {config.train_size} is more than the {total} training examples of "
                          f"{config.dataset}; use 0 (all of them) or at most that many")
    if config.train_size and config.train_size != total and not classes <= config.train_size <= total - classes:
        raise ConfigError(f"{where}: train_size = {config.train_size} is not allowed for {config.dataset}; use 0, "
                          f"{classes} to {total - classes}, or {total} (0 and {total}: the whole split; a stratified "
                          f"subset keeps, and leaves out, at least one example of each of its {classes} classes)")


def max_seed(iterations: int) -> int:
    """The largest seed a run of `iterations` steps can be trained with: its last epoch's seed is below 2**64."""
    return (2 ** 64 - iterations) // SEED_STRIDE
