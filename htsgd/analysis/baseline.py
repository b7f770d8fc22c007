"""The no-noise baseline a configuration is measured against, defined once for the analysis, the verdict and
the figures.

A configuration's baseline key is every training flag except the noise flags (NOISE_KEYS) and the seed; its
baseline is every no-noise run with that key, pooled: no-noise runs that differ only in an unused noise flag
(say iterate_noise_scale) train alike, so they are one baseline, not several. Its reference accuracy is the
median unpruned test accuracy of its converged seeds, given at least MIN_SEEDS of them, the same minimum the
verdict asks of each side before it calls a comparison.
"""

import math
from dataclasses import fields

import numpy as np

from ..core.config import TrainConfig

NOISE_KEYS = ("iterate_noise", "iterate_noise_scale", "iterate_noise_alpha", "iterate_noise_filter")
BASELINE_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name not in NOISE_KEYS + ("seed",))
TOLERANCE = 1.0  # accuracy points: "within 1 point" of the reference
MIN_SEEDS = 2  # converged seeds with a value needed on a side before anything is computed from it
# Per compressor of `core.compress` (a test checks the names agree): the run's equal-accuracy fractions, within
# TOLERANCE of its own accuracy and of its baseline's reference.
EQUAL_ACCURACY_METRICS = {"columns": ("columns_within_1pt", "columns_within_1pt_of_noiseless"),
                          "entries": ("entries_within_1pt", "entries_within_1pt_of_noiseless"),
                          "rank": ("rank_within_1pt", "rank_within_1pt_of_noiseless")}


def is_noisy(config) -> bool:
    return config["iterate_noise"] != 0


def baseline_key(config) -> tuple:
    """The flags a configuration shares with its baseline (`config`: any mapping of the training flags)."""
    return tuple(config[k] for k in BASELINE_KEYS)


def reference_accuracy(converged_accuracies) -> float:
    """Median unpruned test accuracy of a baseline's converged seeds; nan with fewer than MIN_SEEDS."""
    values = np.asarray(converged_accuracies, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) >= MIN_SEEDS else math.nan
