"""The verdict of a group in words: per question, how many comparisons noise wins, loses or leaves open.

Every count comes from `comparisons.comparison_frame` (tables/comparisons.csv), so a sentence and the table
beside it cannot disagree. The questions, each decided seed pair by seed pair (`comparisons.PAIRED_RULE`):
the cost of training with noise (unpruned accuracy), robustness to pruning (within 1 point of the run's own
accuracy), the frontier (within 1 point of no noise's reference accuracy, with the floor beside it) and the
paper's criterion (pruning ratio at mce 0.1).
"""

import numpy as np
import pandas as pd

from ..core.prune import MCE_RATIO
from .comparisons import BETTER, COMPRESSOR_NAMES, DECIDED, HEADLINE_THRESHOLD, UNCLEAR, WORSE

HEADLINE_LIMIT = 500  # characters
HEADLINE_COMPRESSOR = "columns"  # the paper's compressor


def tally(outcomes) -> dict:
    """How many of `outcomes` are better, worse and not clearly different (decided), and how many undecided."""
    outcomes = list(outcomes)
    counts = {word: outcomes.count(word) for word in (BETTER, WORSE, UNCLEAR)}
    counts["undecided"] = len(outcomes) - sum(counts.values())
    return counts


def tally_text(outcomes, better: str, worse: str) -> str:
    """'worse in 5, better in 1, not clearly different in 2 of 8': the decided outcomes, the most
    frequent first; `better` and `worse` are the words for this measure."""
    counts = tally(outcomes)
    decided = counts[BETTER] + counts[WORSE] + counts[UNCLEAR]
    if not decided:
        return "undecided everywhere"
    parts = sorted([(counts[WORSE], worse), (counts[BETTER], better), (counts[UNCLEAR], UNCLEAR)],
                   key=lambda part: -part[0])
    text = ", ".join(f"{word} in {n}" for n, word in parts if n) + f" of {decided}"
    return text + (f" ({counts['undecided']} undecided)" if counts["undecided"] else "")


def per_comparison(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of one compressor, HEADLINE_COMPRESSOR: the measures that do not depend on the compressor (cost,
    the paper's criterion) are read there once per comparison."""
    return frame[frame["compressor"] == HEADLINE_COMPRESSOR]


def headline(frame: pd.DataFrame) -> str:
    """At most HEADLINE_LIMIT characters (below 100 comparisons): the number of comparisons, pairs and undecided
    comparisons, then per question where noise stands in the decided ones, under column pruning (the paper's
    compressor). The undecided are counted once, not after every question, to stay within the limit."""
    rows = per_comparison(frame)
    if rows.empty:
        return "No comparison: the group has no noisy configuration."
    floor = np.nanmedian(rows[f"floor_{HEADLINE_THRESHOLD:g}pt"]) if rows["pairs"].sum() else np.nan
    undecided = tally(rows["outcome"])["undecided"]
    plural = "s" if len(rows) != 1 else ""
    text = (f"{len(rows)} noisy configuration{plural} against no noise, {int(rows['pairs'].sum())} seed pairs"
            + (f", {undecided} undecided. " if undecided else ". ")
            + f"Unpruned accuracy with noise: {_decided_tally(rows['unpruned_outcome'], 'higher', 'lower')}. "
            f"Units removable within 1 pt of the run's own accuracy: "
            f"{_decided_tally(rows['own_1pt_outcome'], 'more', 'fewer')}. "
            f"Within 1 pt of no noise's accuracy: {_decided_tally(rows['outcome'], 'more', 'fewer')}")
    text += (f"; median floor {floor:.0%} of noisy seeds. " if np.isfinite(floor) else ". ")
    text += f"Pruning ratio at mce {MCE_RATIO:g}: {_decided_tally(rows['mce_outcome'], 'higher', 'lower')}."
    return text


def _decided_tally(outcomes, better: str, worse: str) -> str:
    return tally_text([outcome for outcome in outcomes if outcome in DECIDED], better, worse)


def compressor_sentence(frame: pd.DataFrame, compressor: str) -> str:
    """Robustness and frontier under one compressor, as counts of comparisons."""
    rows = frame[frame["compressor"] == compressor]
    return (f"{COMPRESSOR_NAMES[compressor].capitalize()}, comparisons in which noise leaves more or less removable "
            f"within 1 pt of the run's own accuracy: {tally_text(rows['own_1pt_outcome'], 'more', 'less')}; within 1 pt "
            f"of no noise's accuracy: {tally_text(rows['outcome'], 'more', 'less')}.")
