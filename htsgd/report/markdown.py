"""The report's Markdown: the verdict (one short table per question), the summary over counted seeds, every
seed, and the notes above each table."""

import numpy as np
import pandas as pd

from ..analysis import trend
from ..analysis.baseline import NOISE_KEYS, TOLERANCE
from ..analysis.comparisons import (BETTER, COMPRESSOR_NAMES, UNCLEAR, WORSE, HEADLINE_THRESHOLD, MIN_PAIRS, PAIRED_RULE, THRESHOLDS, TOO_FEW,
                                   UNITS)
from ..analysis.run_table import LR_ARM, SETTING_FIELDS, counted_values, format_value, lr_anchor
from ..analysis.verdict import compressor_sentence, headline, per_comparison
from ..core.data import TEST_SET_SIZE
from ..core.prune import MCE_RATIO
from ..record.names import COMPARISONS_CSV, WIDTH_TREND_CSV, COMPLETED, CONVERGED
from .formatting import format_number, markdown_table, mean_std, median_range

GLOSSARY = "../../FINDINGS.md#glossary"  # from a group's tables/ folder

# Per-run metric -> (column header, format). Each is a number per run; statistics are over counted seeds.
METRICS = {
    "test_acc_before": ("test acc before pruning (%)", ".1f"),
    "pruned_test_acc": (f"pruned test acc at mce {MCE_RATIO:g} (%)", ".1f"),
    "accuracy_change": (f"accuracy change at mce {MCE_RATIO:g} (points)", "+.1f"),
    "pruning_ratio": (f"pruning ratio at mce {MCE_RATIO:g}", ".3f"),
    "columns_within_1pt": (f"share of units removable within {TOLERANCE:g} pt of own acc", ".2f"),
    "columns_within_1pt_of_noiseless": (f"share of units removable within {TOLERANCE:g} pt of no noise's median",
                                        ".2f"),
    "entries_within_1pt_of_noiseless": (f"share of weights removable within {TOLERANCE:g} pt of no noise's median",
                                        ".2f"),
    "rank_within_1pt_of_noiseless": (f"share of parameters removable by truncation within {TOLERANCE:g} pt of no "
                                     "noise's median", ".2f"),
    "hill_alpha": ("Hill α̂", ".2f"),
    "block_alpha": ("block α̂", ".2f"),
    "steps": ("steps", ".0f"),
    "max_train_loss_ratio": ("max train loss / initial", ",.1f"),
}
STATS = ("median", "mean", "std", "min", "max")


def seeds_counted(rows: pd.DataFrame) -> str:
    """'3/3 (converged 3)': counted seeds of a configuration over all of them, by how they ended."""
    ended = [f"{word} {int((rows['status'] == word).sum())}" for word in (CONVERGED, COMPLETED)
             if (rows["status"] == word).any()]
    return f"{int(rows['counted'].sum())}/{len(rows)}" + (f" ({', '.join(ended)})" if ended else "")


def seeds_not_counted(rows: pd.DataFrame) -> str:
    """The seeds left out of a configuration's statistics, by seed and status: 'seed 3: diverged'."""
    return "; ".join(f"seed {r.seed}: {r.status}" for r in rows.itertuples() if not r.counted)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: its flags, seeds counted, seeds not counted, and each metric's median, mean,
    sample std, min and max over counted seeds (NaN where none counted)."""
    records = []
    for _, rows in runs.groupby("configuration", sort=False):
        record = {"setting": rows["setting_label"].iloc[0], **rows.iloc[0][SETTING_FIELDS + ["width"]].to_dict(),
                  "seeds_counted": seeds_counted(rows), "not_counted": seeds_not_counted(rows)}
        for metric in METRICS:
            values = counted_values(rows, metric)
            for stat in STATS:
                record[f"{metric}_{stat}"] = _statistic(values, stat)
        records.append(record)
    return pd.DataFrame(records)


def _statistic(values: np.ndarray, stat: str) -> float:
    if stat == "std":
        return float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
    return float(getattr(np, stat)(values)) if len(values) else np.nan


def summary_markdown(runs: pd.DataFrame, title: str, notes: str, per_seed_md: str) -> str:
    """Per configuration: seeds counted, seeds not counted, then per metric 'median (min–max, n); mean ± std'."""
    records = []
    for _, rows in runs.groupby("configuration", sort=False):
        record = {"setting": rows["setting_label"].iloc[0], "width": rows["width"].iloc[0],
                  "seeds counted": seeds_counted(rows), "not counted": seeds_not_counted(rows) or "–"}
        for metric, (header, spec) in METRICS.items():
            values = counted_values(rows, metric)
            record[header] = median_range(values, spec) + ("" if len(values) < 2 else f"; {mean_std(values, spec)}")
        records.append(record)
    explanation = ("Over counted seeds only: median (min–max, n = seeds with a value); mean ± sample std. "
                   f"Every seed is in {per_seed_md}.\n")
    return f"# {title}\n\n{notes}{explanation}\n{markdown_table(pd.DataFrame(records))}"


def per_seed_markdown(runs: pd.DataFrame, title: str, notes: str) -> str:
    shown = pd.DataFrame({"setting": runs["setting_label"], "width": runs["width"], "seed": runs["seed"],
                          "status": runs["status"]})
    for metric, (header, spec) in METRICS.items():
        shown[header] = [format_number(v, spec) for v in runs[metric]]
    if runs["error"].astype(bool).any():
        shown["error"] = runs["error"].str.replace("\n", " ")
    return f"# {title}\n\n{notes}{markdown_table(shown)}"


def table_notes(runs: pd.DataFrame) -> str:
    """The paragraphs above every table: the flags shared by every row, what counts, what one test image is worth."""
    fixed = [f for f in SETTING_FIELDS if f not in NOISE_KEYS and runs[f].nunique(dropna=False) == 1]
    lines = ["Same in every row: " + ", ".join(f"{f} {format_value(runs[f].iloc[0])}" for f in fixed) + ".",
             f"A run is *counted* when it {CONVERGED} (reached its train accuracy) or, with train_to_cap, "
             f"{COMPLETED} its fixed number of steps; statistics are over counted runs only."]
    anchor = lr_anchor(runs)
    if anchor:
        lines.append(f"Runs of an arm \"{LR_ARM.format(anchor).removeprefix(', ')}\" train at lr {runs['lr'].max():g}"
                     f" · {anchor} / width; up to width {anchor} that arm's width trend reads the runs of its stopping "
                     "rule's arm, which train alike there (each run once, noise and no noise alike).")
    if runs["train_size"].any():
        lines.append("train_size n > 0: the run trained on a fixed stratified subset of n training images, the same "
                     "for every run; its train accuracy is on that subset.")
    for dataset in runs["dataset"].unique():
        size = TEST_SET_SIZE.get(dataset)
        lines.append(f"Test set of {dataset}: size unknown to the report." if size is None else
                     f"Test set of {dataset}: {size:,} images; one image is {100 / size:.2g} points of accuracy.")
    return "\n\n".join(lines) + "\n\n"


SYMBOLS = {BETTER: "▲", WORSE: "▼", UNCLEAR: "≈"}  # for noise, in the verdict's tables
SYMBOL_KEY = f"▲ {BETTER}, ▼ {WORSE}, ≈ {UNCLEAR} (for noise)"


def _symbol(outcome: str) -> str:
    return SYMBOLS.get(outcome, outcome)


def _sides(noise: float, none: float, outcome: str) -> str:
    """'0.52 / 0.48 ▲': both medians (noise / no noise) and the paired outcome; the outcome alone when undecided."""
    if outcome not in SYMBOLS or not np.isfinite(noise):
        return outcome
    return f"{noise:.2f} / {none:.2f} {_symbol(outcome)}"


def _setting(rows: pd.DataFrame) -> list[str]:
    """The setting labels without their arm, which the section's heading names."""
    return [label.replace(f", {arm}", "") for label, arm in zip(rows["setting"], rows["arm"])]


def _cost_table(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "setting": _setting(rows), "width": rows["width"], "pairs": rows["pairs"],
        "no noise's acc (%)": [format_number(v, ".1f") for v in rows["reference_acc"]],
        "unpruned: noise − no noise (pts)": [format_number(v, "+.1f") for v in rows["unpruned_diff"]],
        "cost": [_symbol(o) for o in rows["unpruned_outcome"]],
        f"pruning ratio at mce {MCE_RATIO:g}": [_sides(a, b, o) for a, b, o in
                                               zip(rows["mce_noise"], rows["mce_none"], rows["mce_outcome"])]})


def _by_compressor(frame: pd.DataFrame, measure: str, outcome: str, floor: bool = False) -> pd.DataFrame:
    """One row per comparison, one column per compressor: both medians of `measure` and the outcome."""
    rows = per_comparison(frame)
    table = pd.DataFrame({"setting": _setting(rows), "width": rows["width"].to_numpy(),
                          "pairs": rows["pairs"].to_numpy()})
    if floor:
        table["floor"] = [format_number(v, ".0%") for v in rows[f"floor_{HEADLINE_THRESHOLD:g}pt"]]
    for compressor, name in COMPRESSOR_NAMES.items():
        these = frame[frame["compressor"] == compressor]
        table[name] = [_sides(a, b, o) for a, b, o in
                       zip(these[f"{measure}_noise"], these[f"{measure}_none"], these[outcome])]
    return table


def _arm_tables(arms: pd.Series, table: pd.DataFrame) -> str:
    """`table` as one Markdown table per arm (`arms`: each row's), each under its arm's name when there are several."""
    arms = arms.to_numpy()
    if len(set(arms)) <= 1:
        return markdown_table(table)
    return "\n".join(f"*{arm}*\n\n" + markdown_table(table[arms == arm]) for arm in dict.fromkeys(arms))


def control_markdown(control: pd.DataFrame, csv_name: str) -> str:
    """The heavy tail against its Gaussian control (`control`: `comparison_frame` of `control_runs`); '' without."""
    if control.empty:
        return ""
    rows = per_comparison(control)
    frontier = f"within_{HEADLINE_THRESHOLD:g}pt"
    table = pd.DataFrame({
        "setting": _setting(rows), "width": rows["width"], "pairs": rows["pairs"],
        "unpruned: heavy − Gaussian (pts)": [format_number(v, "+.1f") for v in rows["unpruned_diff"]],
        "cost": [_symbol(o) for o in rows["unpruned_outcome"]],
        f"pruning ratio at mce {MCE_RATIO:g}": [_sides(a, b, o) for a, b, o in
                                               zip(rows["mce_noise"], rows["mce_none"], rows["mce_outcome"])],
        f"units within {HEADLINE_THRESHOLD:g} pt of the control's acc": [
            _sides(a, b, o) for a, b, o in zip(rows[f"{frontier}_noise"], rows[f"{frontier}_none"], rows["outcome"])]})
    return ("## The heavy tail against its Gaussian control\n\nEach heavy-tailed setting against the same setting at "
            "α = 2 (Gaussian noise of the same σ), seed pair by seed pair: what the heavy tail adds beyond noise "
            f"itself. Cells read 'heavy / Gaussian', the outcome for the heavy tail. Every measure and compressor: "
            f"[{csv_name}]({csv_name}).\n\n{_arm_tables(rows['arm'], table)}\n")


def verdict_markdown(frame: pd.DataFrame, title: str, notes: str, trend_rows: pd.DataFrame, control: str = "") -> str:
    """verdict.md: the headline, then one short table per question (cost and the paper's criterion;
    robustness; the frontier with its floor), the Gaussian control where there is one (`control`: its
    section), the width trend, the paired rule and the notes."""
    if frame.empty:
        return f"# {title}\n\n**No noisy configuration in this group: nothing to compare.**\n\n{notes}"
    rows = per_comparison(frame)
    units = "; ".join(f"{COMPRESSOR_NAMES[c]}: {u}" for c, u in UNITS.items())
    others = ", ".join(f"{t:g}" for t in THRESHOLDS if t != HEADLINE_THRESHOLD)
    return (
        f"# {title}\n\n**{headline(frame)}**\n\nEach noisy configuration is compared with no noise of the same arm "
        f"and flags, seed pair by seed pair (terms: [glossary]({GLOSSARY})). Cells read 'noise / no noise "
        f"(medians over pairs), outcome', the outcome for noise: {SYMBOL_KEY}. Removable shares are fractions of the "
        f"hidden layer ({units}).\n\n"
        "## Cost of training with noise, and the paper's criterion\n\n"
        f"Unpruned test accuracy, and the pruning ratio at mce {MCE_RATIO:g} (share of columns removed while "
        f"their squared norm stays within {MCE_RATIO:.0%} of the layer's).\n\n"
        f"{_arm_tables(rows['arm'], _cost_table(rows))}\n"
        "## Robustness to pruning\n\n"
        f"Share removable while test accuracy stays within {TOLERANCE:g} point of the run's own unpruned "
        "accuracy.\n\n" + "".join(f"- {compressor_sentence(frame, c)}\n" for c in COMPRESSOR_NAMES) + "\n"
        f"{_arm_tables(rows['arm'], _by_compressor(frame, 'own_1pt', 'own_1pt_outcome'))}\n"
        "## At equal accuracy: the frontier\n\n"
        f"Share removable while test accuracy stays within {HEADLINE_THRESHOLD:g} point of no noise's "
        "reference accuracy (the median unpruned accuracy of its counted seeds). *floor*: the share of noisy "
        "seeds already below that line before anything is removed; they score 0 whatever pruning does, so a "
        "frontier lost at a high floor is noise's accuracy cost, not prunability. The same at "
        f"{others} points, and every side's median, is in [{COMPARISONS_CSV}]({COMPARISONS_CSV}).\n\n"
        f"{_arm_tables(rows['arm'], _by_compressor(frame, f'within_{HEADLINE_THRESHOLD:g}pt', 'outcome', floor=True))}\n"
        + control + trend_markdown(trend_rows) + f"\n## The rule\n\n{PAIRED_RULE}\n\n" + notes)


def trend_markdown(table: pd.DataFrame) -> str:
    """A markdown section: per arm its table (each row's sentence is in WIDTH_TREND_CSV); then RULE. Without a
    row, it says that no trend is stated and why."""
    heading = "## The gap at equal accuracy against width\n\n"
    if table.empty:
        return (heading + f"No noisy setting of this group has {trend.MIN_WIDTHS} or more widths with at least "
                f"{MIN_PAIRS} seed pairs, so no trend with width is stated.\n\n{trend.RULE}\n")
    intro = (f"Per arm, noisy setting and compressor: the median paired gap (noise − no noise) in the share removable "
             f"within 1 point of no noise's accuracy, at the narrowest and the widest width, and its slope per doubling "
             f"of width. Each row in words: [{WIDTH_TREND_CSV}]({WIDTH_TREND_CSV}).\n\n")
    return heading + intro + _arm_tables(table["arm"], _trend_shown(table)) + f"\n{trend.RULE}\n"


def _trend_shown(rows: pd.DataFrame) -> pd.DataFrame:
    """An arm's rows as the markdown table shows them: gaps as shares of the layer, signed."""
    def interval(value, low, high, decimals):
        return f"{trend.signed(value, decimals)} ({trend.signed(low, decimals)} to {trend.signed(high, decimals)})"

    return pd.DataFrame({
        "setting": _setting(rows), "compressor": rows["compressor"],
        "widths (pairs)": [f"{r.first_width}–{r.last_width} ({r.pairs})" for r in rows.itertuples()],
        "gap, narrowest": [trend.signed(g, 2) for g in rows["first_gap"]],
        f"gap, widest ({trend.LEVEL_TEXT})": [interval(r.last_gap, r.last_gap_low, r.last_gap_high, 2)
                                        for r in rows.itertuples()],
        f"slope per doubling ({trend.LEVEL_TEXT})": [interval(r.slope, r.slope_low, r.slope_high, 3)
                                               for r in rows.itertuples()],
        "outcome": rows["outcome"]})
