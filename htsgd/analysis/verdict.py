"""The verdict of a group: does noise beat no noise at equal accuracy, or only by the mce criterion?

The mce criterion removes columns up to a share of the layer's squared norm, so a heavier-tailed
network is pruned further by construction, whatever that costs in accuracy. The fair question is
how many columns can go while test accuracy stays within TOLERANCE of the network without noise.
Each noisy configuration is compared with its baseline (`baseline`: the no-noise runs with the same
flags but noise and seed, pooled), over converged seeds only, and the comparison is stated as a rule
(RULE) that a reader can check against the table beside it.

Works on the run table of `htsgd.report.run_table`: one row per run with `setting_label`,
`width`, `configuration`, `baseline` (the key of `baseline.BASELINE_KEYS`), `noisy`, `converged`
and the metric columns.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .baseline import EQUAL_ACCURACY_METRICS, MIN_SEEDS, NOISE_KEYS, TOLERANCE, reference_accuracy

MCE_RATIO = 0.1  # the paper's pruning criterion: removed squared norm <= 10 % of the layer's

# The compressors by what they remove (`core.compress`), in the analysis' order.
COMPRESSOR_NAMES = {"columns": "column pruning", "entries": "entrywise magnitude pruning",
                    "rank": "singular-value truncation"}

# What each removes, as the verdict's sentence says it.
REMOVED = {"columns": "columns prunable", "entries": "weights prunable", "rank": "parameters removable by truncation"}

BETTER, WORSE, UNCLEAR = "better", "worse", "no clear difference"
DECIDED = (BETTER, WORSE, UNCLEAR)
TOO_FEW, NO_BASELINE = "too few converged seeds", "no no-noise configuration to compare with"

RULE = (
    "How *at equal accuracy* is decided, per noisy configuration against its baseline, over converged seeds "
    "only. The baseline is every no-noise run with the same training flags, width included, except the noise "
    f"flags ({', '.join(NOISE_KEYS)}) and the seed, pooled: no-noise runs that differ only in an unused noise "
    "flag are one baseline. Its reference accuracy is the median unpruned test accuracy of its converged seeds "
    f"(none with fewer than {MIN_SEEDS}). Every seed, with and without noise, is held to one threshold: the "
    f"reference minus {TOLERANCE:g} point; a seed's value is the largest fraction of columns (smallest norms "
    "first, in 2 % steps) removable before its test accuracy first falls below that threshold. Let m₀ be the "
    "median of the baseline seeds' values. **better**: the noisy median exceeds m₀ and strictly more noisy "
    "seeds lie above m₀ than below it; **worse**: the noisy median is below m₀ and strictly more noisy seeds "
    f"lie below m₀ than above it; otherwise **{UNCLEAR}**. With fewer than {MIN_SEEDS} converged seeds with a "
    f"value on either side: **{TOO_FEW}**, undecided. The group counts as better (worse) only when every "
    "comparison that could be decided is better (worse); anything else is mixed. Noise *prunes more at mce "
    f"{MCE_RATIO:g}* when its median pruning ratio there exceeds the baseline's, each over at least {MIN_SEEDS} "
    "converged seeds (else undecided); that gain is *matched at equal accuracy* when the same comparison is "
    "better by the rule above, *not matched* when it is worse or not clearly different, and undecided when "
    "that comparison is."
)


def converged_values(rows: pd.DataFrame, column: str) -> np.ndarray:
    """`column` of the converged runs among `rows`, finite values only."""
    values = rows.loc[rows["converged"], column].to_numpy(dtype=float)
    return values[np.isfinite(values)]


def format_number(value, spec: str) -> str:
    """`value` formatted by `spec`; '–' for a missing or non-finite one."""
    return "–" if value is None or not np.isfinite(value) else f"{value:{spec}}"


def median_range(values: np.ndarray, spec: str) -> str:
    """'0.620 (0.450–0.820, n=3)': median (min–max, number of values); '–' for none. Signed values
    read '-1.1 (-2.8 to +0.8, n=3)', where a dash between them would look like a minus."""
    if not len(values):
        return "–"
    if len(values) == 1:
        return f"{values[0]:{spec}} (n=1)"
    between = " to " if "+" in spec or np.min(values) < 0 else "–"
    return f"{np.median(values):{spec}} ({np.min(values):{spec}}{between}{np.max(values):{spec}}, n={len(values)})"


def equal_accuracy_outcome(noisy: np.ndarray, noise_free: np.ndarray) -> str:
    """Whether noise beats no noise at equal accuracy (see RULE).

    `noisy`, `noise_free`: the noisy and the baseline seeds' fractions prunable within TOLERANCE of the
    baseline's reference accuracy, so both sides are held to one threshold.
    With m0 = median(noise_free): better iff median(noisy) > m0 and #(noisy > m0) > #(noisy < m0);
    worse iff median(noisy) < m0 and #(noisy < m0) > #(noisy > m0); otherwise no clear difference;
    fewer than MIN_SEEDS values on either side: too few converged seeds.
    """
    if len(noisy) < MIN_SEEDS or len(noise_free) < MIN_SEEDS:
        return TOO_FEW
    reference = np.median(noise_free)
    above, below = int(np.sum(noisy > reference)), int(np.sum(noisy < reference))
    if np.median(noisy) > reference and above > below:
        return BETTER
    if np.median(noisy) < reference and below > above:
        return WORSE
    return UNCLEAR


def baseline_label(noise_free: pd.DataFrame) -> str:
    """The settings a baseline pools, by their labels: 'no noise', or several joined by ' + '."""
    return " + ".join(dict.fromkeys(noise_free["setting_label"]))


def baseline_reference(noise_free: pd.DataFrame) -> float:
    """A baseline's reference accuracy (`baseline.reference_accuracy`) from its runs' unpruned test accuracy."""
    return reference_accuracy(converged_values(noise_free, "test_acc_before"))


@dataclass
class Comparison:
    """A noisy configuration's runs against those of its pooled baseline (None when it has none)."""
    noisy: pd.DataFrame
    noise_free: pd.DataFrame | None

    @property
    def name(self) -> str:
        return f"{self.noisy['setting_label'].iloc[0]}, width {self.noisy['width'].iloc[0]}"

    @property
    def reference(self) -> float:
        return math.nan if self.noise_free is None else baseline_reference(self.noise_free)

    @property
    def outcome(self) -> str:
        """At equal accuracy under column pruning, the paper's compressor."""
        return self.outcome_under("columns")

    def outcome_under(self, compressor: str) -> str:
        if self.noise_free is None:
            return NO_BASELINE
        column = EQUAL_ACCURACY_METRICS[compressor][1]
        return equal_accuracy_outcome(converged_values(self.noisy, column), converged_values(self.noise_free, column))

    @property
    def mce_gain(self) -> bool | None:
        """Whether the noisy median pruning ratio at mce exceeds the baseline's; None (undecided) without a
        baseline or with fewer than MIN_SEEDS converged values on either side, as in the equal-accuracy rule."""
        if self.noise_free is None:
            return None
        noisy, noise_free = (converged_values(rows, "pruning_ratio") for rows in (self.noisy, self.noise_free))
        if len(noisy) < MIN_SEEDS or len(noise_free) < MIN_SEEDS:
            return None
        return bool(np.median(noisy) > np.median(noise_free))

    @property
    def why_undecided(self) -> str:
        return NO_BASELINE if self.noise_free is None else TOO_FEW


def comparisons(runs: pd.DataFrame) -> list[Comparison]:
    """Every noisy configuration against its baseline: all no-noise runs of its `baseline` key, pooled."""
    noise_free = runs[~runs["noisy"]]
    found = []
    for _, noisy in runs[runs["noisy"]].groupby("configuration", sort=False):
        baseline = noise_free[noise_free["baseline"] == noisy["baseline"].iloc[0]]
        found.append(Comparison(noisy, None if baseline.empty else baseline))
    return found


def group_sentence(found: list[Comparison], compressor: str = "columns") -> str:
    """One sentence: does noise beat no noise at equal accuracy in this group, under `compressor`?"""
    outcomes = [c.outcome_under(compressor) for c in found]
    decided = [o for o in outcomes if o in DECIDED]
    undecided = len(outcomes) - len(decided)
    if not found:
        return "No comparison at equal accuracy is possible: the group has no noisy configuration."
    if not decided:
        reasons = " or ".join(sorted(set(outcomes)))
        return f"No comparison at equal accuracy could be decided in this group ({reasons})."
    note = f" ({undecided} more undecided, see the table)" if undecided else ""
    scope = "in its one decided comparison" if len(decided) == 1 else f"in all {len(decided)} decided comparisons"
    removable = f"{REMOVED[compressor]} within {TOLERANCE:g} point of no noise's median accuracy"
    if all(o == BETTER for o in decided):
        return (f"At equal accuracy noise beats no noise in this group: better {scope}{note}, with more "
                f"{removable}.")
    if all(o == WORSE for o in decided):
        return (f"At equal accuracy noise does not beat no noise in this group: worse {scope}{note}, with fewer "
                f"{removable}.")
    better, worse, unclear = decided.count(BETTER), decided.count(WORSE), decided.count(UNCLEAR)
    if worse > len(decided) / 2:  # a majority is said as one, never as "no clear difference"
        return (f"At equal accuracy noise mostly does not beat no noise in this group: worse in {worse} of "
                f"{len(decided)} decided comparisons, better in {better} and not clearly different in {unclear}{note}.")
    if better > len(decided) / 2:
        return (f"At equal accuracy noise mostly beats no noise in this group: better in {better} of {len(decided)} "
                f"decided comparisons, worse in {worse} and not clearly different in {unclear}{note}.")
    return (f"At equal accuracy the picture is mixed, with no clear overall difference: of {len(decided)} decided "
            f"comparison{'s' if len(decided) > 1 else ''} noise is better in {better}, worse in {worse} and not "
            f"clearly different in {unclear}{note}.")


def compressor_sentences(found: list[Comparison]) -> list[str]:
    """Per compressor, the group's sentence at equal accuracy; then which compressors, if any, favour noise: those
    under which every decided comparison is better."""
    sentences = [f"Under {name}: {group_sentence(found, compressor)}" for compressor, name in COMPRESSOR_NAMES.items()]
    favouring = [name for compressor, name in COMPRESSOR_NAMES.items()
                 if _decided(found, compressor) and all(o == BETTER for o in _decided(found, compressor))]
    sentences.append(f"Compressors that favour noise at equal accuracy: {', '.join(favouring)}." if favouring else
                     "No compressor favours noise at equal accuracy in this group.")
    return sentences


def _decided(found: list[Comparison], compressor: str) -> list[str]:
    return [o for o in (c.outcome_under(compressor) for c in found) if o in DECIDED]


def mce_sentence(found: list[Comparison]) -> str:
    """One sentence: is every gain in mce pruning ratio matched by a gain at equal accuracy? A comparison
    that either question cannot decide (too few converged seeds, no baseline) is named as undecided, never
    counted as not matched."""
    gains = [c for c in found if c.mce_gain and c.outcome in DECIDED]
    undecided = [c for c in found if c.mce_gain is None or (c.mce_gain and c.outcome not in DECIDED)]
    note = ""
    if undecided:
        reasons = " or ".join(sorted({c.why_undecided for c in undecided}))
        note = f" Undecided ({reasons}): {'; '.join(c.name for c in undecided)}."
    if not gains:
        return f"Noise prunes no more than no noise at mce {MCE_RATIO:g} in any decided comparison.{note}"
    unmatched = [c.name for c in gains if c.outcome != BETTER]
    if not unmatched:
        return f"Every gain in pruning ratio at mce {MCE_RATIO:g} ({len(gains)}) is matched at equal accuracy.{note}"
    return (f"The gain in pruning ratio at mce {MCE_RATIO:g} is not matched at equal accuracy in "
            f"{len(unmatched)} of the {len(gains)} comparisons where noise prunes more at mce "
            f"({'; '.join(unmatched)}).{note}")


def comparison_table(found: list[Comparison]) -> pd.DataFrame:
    """The verdict's table: per comparison, each measure for noise and for no noise as median (range, n)."""
    def cells(rows, column, spec):
        return "–" if rows is None else median_range(converged_values(rows, column), spec)

    def seeds(rows):
        return "–" if rows is None else f"{int(rows['converged'].sum())}/{len(rows)}"

    mce, within = f"mce {MCE_RATIO:g}", f"fraction prunable within {TOLERANCE:g} pt of no noise's median"
    return pd.DataFrame([{
        "noise setting": c.noisy["setting_label"].iloc[0],
        "width": c.noisy["width"].iloc[0],
        "compared with": "–" if c.noise_free is None else baseline_label(c.noise_free),
        "seeds converged (noise / no noise)": f"{seeds(c.noisy)} / {seeds(c.noise_free)}",
        "no noise's median test acc (%)": format_number(c.reference, ".2f"),
        f"pruning ratio at {mce}: noise": cells(c.noisy, "pruning_ratio", ".3f"),
        f"pruning ratio at {mce}: no noise": cells(c.noise_free, "pruning_ratio", ".3f"),
        f"accuracy change at {mce} (points): noise": cells(c.noisy, "accuracy_change", "+.1f"),
        f"accuracy change at {mce} (points): no noise": cells(c.noise_free, "accuracy_change", "+.1f"),
        f"{within}: noise": cells(c.noisy, "columns_within_1pt_of_noiseless", ".2f"),
        f"{within}: no noise": cells(c.noise_free, "columns_within_1pt_of_noiseless", ".2f"),
        "at equal accuracy": c.outcome,
    } for c in found])


def compressor_table(found: list[Comparison]) -> pd.DataFrame:
    """Per comparison and compressor: the share of hidden weights removable within TOLERANCE of no noise's
    median accuracy, for noise and for no noise as median (range, n), and the outcome."""
    def cells(rows, column):
        return "–" if rows is None else median_range(converged_values(rows, column), ".2f")

    return pd.DataFrame([{
        "noise setting": c.noisy["setting_label"].iloc[0],
        "width": c.noisy["width"].iloc[0],
        "compressor": name,
        "removable within 1 pt of no noise's median: noise": cells(c.noisy, EQUAL_ACCURACY_METRICS[compressor][1]),
        "removable within 1 pt of no noise's median: no noise": cells(c.noise_free, EQUAL_ACCURACY_METRICS[compressor][1]),
        "at equal accuracy": c.outcome_under(compressor),
    } for c in found for compressor, name in COMPRESSOR_NAMES.items()])

