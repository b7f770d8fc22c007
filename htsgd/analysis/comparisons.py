"""Noise against no noise, seed pair by seed pair, with noise's accuracy cost kept apart from prunability.

A comparison is one noisy configuration against its baseline: the no-noise runs of the same arm with the
same training flags but the noise flags and the seed (`baseline.baseline_key`). A noisy run and the
no-noise run with the same seed start from the same weights and see the same batches, so they are compared
as a *seed pair*; a pair counts when both runs count (`run_table.counted_values`). Three questions are
asked of every comparison and compressor, each by paired differences (noise minus no noise):

* **cost**: the unpruned test accuracy (points);
* **robustness**: the share of hidden weights removable while test accuracy stays within 1 point of the
  run's *own* unpruned accuracy (the analysis' `<compressor>_within_1pt`);
* **frontier**: the share removable while test accuracy stays within t points of the baseline's
  *reference* accuracy (the median unpruned test accuracy of its counted seeds), for t in THRESHOLDS.
  A noisy run whose unpruned accuracy is already below reference − t scores 0 whatever pruning does: that
  share of noisy seeds is the *floor* and is reported beside the frontier, never folded into it.

The paper's own criterion is asked too: the pruning ratio at mce 0.1 (`mce`). Where a group runs a setting at
α = 2 as well (the Gaussian limit at the same σ), `control_runs` asks the same questions of the heavy tail
against that control.

PAIRED_RULE decides each one; `comparison_frame` is `tables/comparisons.csv`, which the verdict, the width
trend and FINDINGS.md all read.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .baseline import BASELINE_KEYS, EQUAL_ACCURACY_METRICS, MIN_SEEDS, reference_accuracy
from .run_analysis import prunable_fraction
from .run_table import counted_values, keys

THRESHOLDS = (0.5, 1.0, 2.0, 5.0)  # accuracy points below the reference: the frontier's tolerances
HEADLINE_THRESHOLD = 1.0  # the frontier the verdict's sentences and the width trend read
SWEEP_STEP = 0.02  # the sweep's resolution: a smaller difference in a removable share is not one it can show
COMPRESSORS = tuple(EQUAL_ACCURACY_METRICS)  # columns, entries, rank
# What each compressor removes, and the unit its removable share is a share of.
COMPRESSOR_NAMES = {"columns": "column pruning", "entries": "entrywise pruning", "rank": "singular-value truncation"}
UNITS = {"columns": "share of hidden units", "entries": "share of hidden-layer weights",
         "rank": "share of hidden-layer parameters saved by a low-rank factorisation"}
MIN_PAIRS = MIN_SEEDS

BETTER, WORSE, UNCLEAR = "better", "worse", "not clearly different"
DECIDED = (BETTER, WORSE, UNCLEAR)
TOO_FEW, NO_BASELINE = "too few pairs", "no baseline"

PAIRED_RULE = (
    "Every comparison is decided by its seed pairs: a noisy run and the no-noise run with the same seed (same "
    "initial weights, same batches), both counted. Per pair the difference is noise minus no noise. **better** "
    "(for noise): the median difference is at least the smallest step the measure resolves and strictly more "
    "pairs differ upward than downward; **worse**: the mirror image; otherwise **not clearly different**. The "
    f"step is {SWEEP_STEP:g} of the layer for a removable share (one sweep step) and one test image for an "
    f"accuracy. With fewer than {MIN_PAIRS} pairs: **{TOO_FEW}**. What this can show: with 3 pairs, all three "
    "pointing one way has probability 1/4 under no effect (a two-sided sign test), so no outcome here reaches "
    "p < 0.05; *better* and *worse* say where the seeds we have point, not that the effect is established."
)


def paired_outcome(differences, step: float) -> str:
    """PAIRED_RULE on the paired differences (noise minus no noise) of one measure; `step`: its resolution."""
    differences = np.asarray(differences, dtype=float)
    differences = differences[np.isfinite(differences)]
    if len(differences) < MIN_PAIRS:
        return TOO_FEW
    median, up, down = np.median(differences), int(np.sum(differences > 0)), int(np.sum(differences < 0))
    if median >= step - 1e-12 and up > down:
        return BETTER
    if median <= -step + 1e-12 and down > up:
        return WORSE
    return UNCLEAR


def baseline_reference(noise_free: pd.DataFrame) -> float:
    """A baseline's reference accuracy: the median unpruned test accuracy of its counted seeds (nan with fewer
    than MIN_SEEDS)."""
    return reference_accuracy(counted_values(noise_free, "test_acc_before"))


def baseline_label(noise_free: pd.DataFrame) -> str:
    """The settings a baseline pools, by their labels: 'no noise', or several joined by ' + '."""
    return " + ".join(dict.fromkeys(noise_free["setting_label"]))


def baseline_runs(runs: pd.DataFrame, noisy: pd.DataFrame) -> pd.DataFrame:
    """The one baseline selector: the no-noise runs of `noisy`'s arm and baseline key."""
    first = noisy.iloc[0]
    return runs[~runs["noisy"] & (runs["baseline"] == first["baseline"]) & (runs["arm"] == first["arm"])]


@dataclass
class Comparison:
    """A noisy configuration's runs against its baseline's (empty when it has none)."""
    noisy: pd.DataFrame
    baseline: pd.DataFrame

    @property
    def first(self):
        return self.noisy.iloc[0]

    @property
    def reference(self) -> float:
        return baseline_reference(self.baseline)

    def pairs(self) -> list[tuple]:
        """(noisy run, baseline runs) per seed where the noisy run and at least one baseline run count, in seed
        order. A baseline that pools several no-noise configurations can hold more than one run of a seed."""
        baseline = self.baseline[self.baseline["counted"]]
        found = []
        for run in self.noisy[self.noisy["counted"]].sort_values("seed").itertuples():
            partners = baseline[baseline["seed"] == run.seed]
            if not partners.empty:
                found.append((run, partners))
        return found


def comparisons(runs: pd.DataFrame) -> list[Comparison]:
    """Every noisy configuration of the run table against its baseline: arm by arm (in the order their narrowest
    widths appear), then in the table's order. A configuration is one per arm: `trend_runs` copies runs into a
    second arm with their flags unchanged."""
    arms = list(dict.fromkeys(runs.sort_values("width", kind="stable")["arm"]))
    found = [Comparison(noisy, baseline_runs(runs, noisy))
             for _, noisy in runs[runs["noisy"]].groupby(["arm", "configuration"], sort=False)]
    return sorted(found, key=lambda comparison: arms.index(comparison.first["arm"]))


def sweep_points(sweep: pd.DataFrame) -> dict:
    """Per run id, its sweep as the analysis' `prunable_fraction` reads it: a list of point dicts."""
    return {key: rows.to_dict("records") for key, rows in sweep.groupby("exp_key", sort=False)}


def pair_frame(runs: pd.DataFrame, sweep: pd.DataFrame) -> pd.DataFrame:
    """One row per comparison, compressor and seed pair: every measure for noise and for no noise (a baseline
    side pooling several runs of a seed takes their median), and `below_<t>`: whether the noisy run's unpruned
    accuracy is already below reference − t."""
    points, records = sweep_points(sweep), []
    for comparison in comparisons(runs):
        reference, pairs = comparison.reference, comparison.pairs()
        for compressor in COMPRESSORS:
            own = EQUAL_ACCURACY_METRICS[compressor][0]
            for run, partners in pairs:
                record = {"configuration": run.configuration, "arm": run.arm, "setting_label": run.setting_label,
                          "width": run.width, "compressor": compressor, "seed": run.seed, "noisy_id": run.id,
                          "baseline_id": "+".join(partners["id"]), "reference_acc": reference,
                          "unpruned_noise": run.test_acc_before,
                          "unpruned_none": partners["test_acc_before"].median(),
                          "own_noise": getattr(run, own), "own_none": partners[own].median(),
                          "mce_noise": run.pruning_ratio, "mce_none": partners["pruning_ratio"].median()}
                for t in THRESHOLDS:
                    record[f"within_{t:g}_noise"] = _within(points, run.id, compressor, reference, t)
                    record[f"within_{t:g}_none"] = np.median([_within(points, i, compressor, reference, t)
                                                              for i in partners["id"]])
                    record[f"below_{t:g}"] = bool(run.test_acc_before < reference - t - 1e-9)
                records.append(record)
    return pd.DataFrame(records)


def _within(points: dict, run_id: str, compressor: str, reference: float, tolerance: float) -> float:
    if run_id not in points or not np.isfinite(reference):
        return np.nan
    return prunable_fraction(points[run_id], compressor, reference, tolerance)


FRAME_COLUMNS = (["setting", "arm", "width", "compressor", "noisy_ids", "baseline_ids", "pairs", "unpruned_diff",
                  "reference_acc", "own_1pt_noise", "own_1pt_none"]
                 + [f"{kind}_{t:g}pt{side}" for t in THRESHOLDS
                    for kind, side in (("within", "_noise"), ("within", "_none"), ("floor", ""))]
                 + ["mce_noise", "mce_none", "unpruned_outcome", "own_1pt_outcome", "mce_outcome", "outcome"])


def comparison_frame(runs: pd.DataFrame, sweep: pd.DataFrame, test_set_size: int) -> pd.DataFrame:
    """tables/comparisons.csv: one row per comparison and compressor. Sides are medians over the seed pairs;
    `unpruned_diff` the median paired difference in points; `floor_<t>pt` the share of the pairs' noisy runs
    already below reference − t before anything is removed; the outcomes by PAIRED_RULE (`outcome`: the
    frontier at HEADLINE_THRESHOLD; `own_1pt_outcome`: robustness; `unpruned_outcome`: cost; `mce_outcome`: the
    paper's criterion)."""
    pairs = pair_frame(runs, sweep)
    image = 100.0 / test_set_size
    records = []
    for comparison in comparisons(runs):
        first = comparison.first
        for compressor in COMPRESSORS:
            rows = (pairs[(pairs["configuration"] == first["configuration"]) & (pairs["arm"] == first["arm"])
                          & (pairs["compressor"] == compressor)] if len(pairs) else pairs)
            record = {"setting": first["setting_label"], "arm": first["arm"], "width": first["width"],
                      "compressor": compressor, "noisy_ids": ";".join(rows.get("noisy_id", [])),
                      "baseline_ids": ";".join(rows.get("baseline_id", [])), "pairs": len(rows),
                      "reference_acc": comparison.reference}
            if comparison.baseline.empty:
                records.append({**record, **{k: NO_BASELINE for k in FRAME_COLUMNS if k.endswith("outcome")}})
                continue
            record["unpruned_diff"] = _median(rows, "unpruned_noise", "unpruned_none")
            record["own_1pt_noise"], record["own_1pt_none"] = _sides(rows, "own")
            for t in THRESHOLDS:
                record[f"within_{t:g}pt_noise"], record[f"within_{t:g}pt_none"] = _sides(rows, f"within_{t:g}")
                record[f"floor_{t:g}pt"] = float(rows[f"below_{t:g}"].mean()) if len(rows) else np.nan
            record["mce_noise"], record["mce_none"] = _sides(rows, "mce")
            record["unpruned_outcome"] = _outcome(rows, "unpruned", image)
            record["own_1pt_outcome"] = _outcome(rows, "own", SWEEP_STEP)
            record["mce_outcome"] = _outcome(rows, "mce", SWEEP_STEP)
            record["outcome"] = _outcome(rows, f"within_{HEADLINE_THRESHOLD:g}", SWEEP_STEP)
            records.append(record)
    return pd.DataFrame(records, columns=FRAME_COLUMNS)


def differences(rows: pd.DataFrame, measure: str) -> np.ndarray:
    """Per seed pair of `rows` (of `pair_frame`): `measure` for noise minus for no noise."""
    if rows.empty:
        return np.array([])
    return (rows[f"{measure}_noise"] - rows[f"{measure}_none"]).to_numpy(dtype=float)


def _median(rows, noise: str, none: str) -> float:
    values = (rows[noise] - rows[none]).dropna() if len(rows) else []
    return float(np.median(values)) if len(values) else np.nan


def _sides(rows: pd.DataFrame, measure: str) -> tuple:
    if rows.empty:
        return np.nan, np.nan
    return tuple(float(rows[f"{measure}_{side}"].median()) for side in ("noise", "none"))


def _outcome(rows: pd.DataFrame, measure: str, step: float) -> str:
    return paired_outcome(differences(rows, measure), step)


GAUSSIAN_ALPHA = 2.0  # the stable law's Gaussian limit: the control for a heavy tail at the same σ
CONTROL_KEYS = list(BASELINE_KEYS) + ["iterate_noise", "iterate_noise_scale", "iterate_noise_filter"]


def control_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The noisy runs of every setting that was also run at α = 2 with all else equal, as a run table in which the
    heavy-tailed runs are the noisy side and their α = 2 twins the baseline: is it the heavy tail, or the noise?"""
    noisy = runs[runs["noisy"]].copy()
    noisy["baseline"] = keys(noisy, CONTROL_KEYS)
    gaussian = noisy["iterate_noise_alpha"] == GAUSSIAN_ALPHA
    controlled = noisy[noisy["baseline"].isin(set(noisy.loc[gaussian, "baseline"]))].copy()
    controlled["noisy"] = controlled["iterate_noise_alpha"] != GAUSSIAN_ALPHA
    return controlled
