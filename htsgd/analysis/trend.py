"""Does the gap between noise and no noise at equal accuracy narrow, close, widen, or show no trend with width?

The verdict compares each noisy configuration with its baseline at one width. The paper's claim is about wide
networks, so the question here is how that comparison moves as width grows: per arm (a stopping rule, say),
noisy setting and compressor, the gap is the noisy seeds' median equal-accuracy fraction minus its baseline's
(the no-noise runs with the same `baseline` key, pooled, as `verdict.comparisons` pairs them), over converged
seeds, at each width where both sides have at least MIN_SEEDS values. A line fitted through the gaps against
log2(width) gives the change per doubling; a bootstrap over seeds says whether that change is distinguishable
from none, and RULE turns slope and gaps into one word a reader can check against the table.

Works on the run table of `htsgd.report.run_table` with an `arm` column added: one row per run with `seed`,
`width`, `setting_label`, `noisy`, `converged`, `arm`, `baseline`, `steps` and one column per compressor.
"""

import math

import numpy as np
import pandas as pd

from .baseline import MIN_SEEDS
from .verdict import converged_values

MIN_WIDTHS = 3  # widths with a gap needed before a slope is fitted: two points always lie on a line
LEVEL = 0.90  # of every bootstrap interval
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0  # a fixed seed per call, so that a record regenerates byte-identically
CLOSING_REACH = 2.0  # a closing width is extrapolated at most this many times the widest width measured
LEVEL_TEXT = f"{LEVEL * 100:g} %"

NARROWS, CLOSES, WIDENS, NO_TREND = "narrows", "closes", "widens", "shows no trend"

GAP_COLUMNS = ["arm", "setting_label", "width", "n_noisy", "n_noise_free", "noisy_median", "noise_free_median",
               "gap", "gap_low", "gap_high"]
TREND_COLUMNS = ["arm", "setting", "compressor", "widths", "first_width", "last_width", "first_gap", "last_gap",
                 "last_gap_low", "last_gap_high", "last_noisy", "last_noise_free", "slope", "slope_low", "slope_high",
                 "outcome", "closing_width", "sentence"]

RULE = (
    "How the trend is read, per arm, noisy setting and compressor. The gap is the noisy seeds' median "
    "equal-accuracy fraction minus that of the no-noise runs it is compared with (its baseline, pooled), over "
    f"converged seeds, at every width where both sides have at least {MIN_SEEDS} of them; with fewer than "
    f"{MIN_WIDTHS} such widths no trend is stated. The slope is the ordinary least-squares line through the gaps "
    f"against log2(width): the change per doubling of width. Its {LEVEL_TEXT} interval, and each gap's, are "
    f"percentile intervals over {BOOTSTRAP_SAMPLES} bootstrap samples that resample each side's seeds at every "
    f"width, with replacement (fixed seed {BOOTSTRAP_SEED}, so the numbers regenerate). **{NO_TREND}**: the "
    f"slope's interval contains 0; **{NARROWS}**: it excludes 0 and the gap moves toward 0 (the slope's sign is "
    "opposite to the gap's at the narrowest width, or to the mean gap's where that one is 0); **closes**: it "
    "narrows and at the widest width the gap's interval contains 0, or the gap has changed sign and is smaller "
    f"than at the narrowest width; **{WIDENS}**: the gap moves away from 0, or crosses it and ends larger on the "
    "other side. Where the gap narrows but has not closed, the width at which the "
    f"fitted line reaches 0 is stated only when it is at most {CLOSING_REACH:g}× the widest width measured."
)


def _paired_seeds(runs: pd.DataFrame, column: str) -> dict:
    """Per (arm, noisy setting label): [(width, noisy values, noise-free values)], widest last, over the widths
    where both sides have at least MIN_SEEDS converged finite values of `column`."""
    noise_free = runs[~runs["noisy"]]
    found = {}
    for (arm, label, width), noisy in runs[runs["noisy"]].groupby(["arm", "setting_label", "width"], sort=False):
        baseline = noise_free[noise_free["baseline"] == noisy["baseline"].iloc[0]]
        pair = converged_values(noisy, column), converged_values(baseline, column)
        if min(len(values) for values in pair) >= MIN_SEEDS:
            found.setdefault((arm, label), []).append((width, *pair))
    return {key: sorted(pairs, key=lambda pair: pair[0]) for key, pairs in found.items()}


def _bootstrap_gaps(pairs: list) -> np.ndarray:
    """BOOTSTRAP_SAMPLES × widths gaps of medians, each side's seeds resampled with replacement, independently,
    at every width; the generator is fresh per call, so the same seeds always give the same samples."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)

    def medians(values):
        return np.median(rng.choice(values, size=(BOOTSTRAP_SAMPLES, len(values))), axis=1)

    return np.column_stack([medians(noisy) - medians(noise_free) for _, noisy, noise_free in pairs])


def _interval(samples: np.ndarray, axis=None) -> tuple:
    """The central LEVEL percentile interval of `samples`."""
    tail = 100 * (1 - LEVEL) / 2
    return tuple(np.percentile(samples, [tail, 100 - tail], axis=axis))


def _gaps(runs: pd.DataFrame, column: str):
    """Per (arm, noisy setting): its `gap_by_width` rows, and the bootstrap gaps behind them (samples × widths)."""
    for (arm, label), pairs in _paired_seeds(runs, column).items():
        samples = _bootstrap_gaps(pairs)
        rows = pd.DataFrame({
            "arm": arm, "setting_label": label, "width": [width for width, _, _ in pairs],
            "n_noisy": [len(noisy) for _, noisy, _ in pairs],
            "n_noise_free": [len(noise_free) for _, _, noise_free in pairs],
            "noisy_median": [np.median(noisy) for _, noisy, _ in pairs],
            "noise_free_median": [np.median(noise_free) for _, _, noise_free in pairs]})
        rows["gap"] = rows["noisy_median"] - rows["noise_free_median"]
        rows["gap_low"], rows["gap_high"] = _interval(samples, axis=0)
        yield rows, samples


def gap_by_width(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per (arm, noisy setting, width) with at least MIN_SEEDS converged values on both sides: the medians, the
    gap (noise minus no noise) and its LEVEL bootstrap interval over seeds (GAP_COLUMNS)."""
    return _gap_frame(list(_gaps(runs, column)))


def _gap_frame(found: list) -> pd.DataFrame:
    return pd.concat([rows for rows, _ in found], ignore_index=True) if found else pd.DataFrame(columns=GAP_COLUMNS)


def width_trend(runs: pd.DataFrame, columns: dict) -> tuple[dict, pd.DataFrame]:
    """Both of what a report shows of the trend, from one bootstrap per (arm, noisy setting, compressor): the
    `gap_by_width` rows per compressor (display name -> rows) and the `trend_table`."""
    found = {compressor: list(_gaps(runs, column)) for compressor, column in columns.items()}
    return {compressor: _gap_frame(f) for compressor, f in found.items()}, _table(runs, found)


def _slopes(x: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """The least-squares slope of `gaps` (a row, or one per sample) against `x`."""
    dx = x - x.mean()
    return ((gaps - gaps.mean(axis=-1, keepdims=True)) * dx).sum(axis=-1) / (dx * dx).sum()


def classify(gaps, slope_low: float, slope_high: float, widest: tuple) -> str:
    """One of NARROWS, CLOSES, WIDENS, NO_TREND (see RULE), from the gaps (narrowest first), the slope's
    interval and the interval of the gap at the widest width."""
    if slope_low <= 0 <= slope_high:
        return NO_TREND
    gaps = np.asarray(gaps, dtype=float)
    start = np.sign(gaps[0]) or np.sign(gaps.mean())
    if start == 0 or np.sign(slope_low) == start:
        return WIDENS
    if widest[0] <= 0 <= widest[1]:
        return CLOSES
    if np.sign(gaps[-1]) == -start:  # crossed 0: closed, or opened wider on the other side
        return CLOSES if abs(gaps[-1]) < abs(gaps[0]) else WIDENS
    return NARROWS


def closing_width(widths, gaps, slope: float) -> float:
    """The width where the line fitted to `gaps` against log2(`widths`) reaches 0, 2**(−intercept/slope);
    nan when that lies beyond CLOSING_REACH × the widest width (or the line is flat)."""
    x = np.log2(np.asarray(widths, dtype=float))
    if slope == 0:
        return math.nan
    width = 2 ** (x.mean() - np.mean(gaps) / slope)
    return float(width) if width <= CLOSING_REACH * max(widths) else math.nan


def trend_table(runs: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """One row per (arm, noisy setting, compressor) with at least MIN_WIDTHS widths (TREND_COLUMNS), in the run
    table's order of arms and settings, then `columns`' order of compressors (display name -> column)."""
    return _table(runs, {compressor: _gaps(runs, column) for compressor, column in columns.items()})


def _table(runs: pd.DataFrame, found: dict) -> pd.DataFrame:
    """`trend_table` from each compressor's `_gaps` (display name -> (rows, bootstrap samples) per setting)."""
    records = [_trend_record(compressor, rows, samples) for compressor, gaps in found.items()
               for rows, samples in gaps if len(rows) >= MIN_WIDTHS]
    order = {key: i for i, key in enumerate(dict.fromkeys(zip(runs["arm"], runs["setting_label"])))}
    records.sort(key=lambda record: order[record["arm"], record["setting"]])  # stable: compressors stay in order
    return pd.DataFrame(records, columns=TREND_COLUMNS)


def _trend_record(compressor: str, rows: pd.DataFrame, samples: np.ndarray) -> dict:
    widths, gaps = rows["width"].to_numpy(), rows["gap"].to_numpy(dtype=float)
    x = np.log2(widths.astype(float))
    slope = float(_slopes(x, gaps))
    slope_low, slope_high = (float(v) for v in _interval(_slopes(x, samples)))
    widest = rows.iloc[-1]
    outcome = classify(gaps, slope_low, slope_high, (widest["gap_low"], widest["gap_high"]))
    record = {
        "arm": widest["arm"], "setting": widest["setting_label"], "compressor": compressor, "widths": len(rows),
        "first_width": int(widths[0]), "last_width": int(widths[-1]), "first_gap": float(gaps[0]),
        "last_gap": float(gaps[-1]), "last_gap_low": float(widest["gap_low"]),
        "last_gap_high": float(widest["gap_high"]), "last_noisy": float(widest["noisy_median"]),
        "last_noise_free": float(widest["noise_free_median"]), "slope": slope, "slope_low": slope_low,
        "slope_high": slope_high, "outcome": outcome,
        "closing_width": closing_width(widths, gaps, slope) if outcome == NARROWS else math.nan}
    record["sentence"] = trend_sentence(record)
    return record


def signed(value: float, decimals: int) -> str:
    """'+0.06', '−0.58' (a true minus sign). A value that rounds to zero keeps its sign ('−0.00' is just below
    0); zero itself reads '+0.00'."""
    return f"{float(value) + 0.0:+.{decimals}f}".replace("-", "−")  # + 0.0 turns −0.0 into 0.0


def _round_width(width: float) -> int:
    """A width to two significant digits: an extrapolation is no more precise than that."""
    return int(float(f"{width:.2g}"))


def trend_sentence(row) -> str:
    """The sentence of one `trend_table` row (a mapping with its columns, `sentence` aside): the outcome, the gaps
    at the narrowest and the widest width (fractions of the layer), the slope per doubling with its interval,
    and for a narrowing gap where it would close or that the data do not reach that far."""
    compressor = row["compressor"][:1].upper() + row["compressor"][1:]
    named = row["setting"] if row["arm"] in row["setting"] else f"{row['setting']} ({row['arm']})"  # arm once
    sentence = (f"{compressor}, {named}: the gap to no noise {row['outcome']} with width, "
                f"from {signed(row['first_gap'], 2)} at width {row['first_width']} to {signed(row['last_gap'], 2)} "
                f"at width {row['last_width']} (slope {signed(row['slope'], 3)} per doubling, {LEVEL_TEXT} "
                f"interval {signed(row['slope_low'], 3)} to {signed(row['slope_high'], 3)})")
    if row["outcome"] == CLOSES:
        # the two medians say whether it closed with noise gaining or with no noise losing (both near 0, say)
        medians = (f" (noise's median {row['last_noisy']:.2f}, no noise's {row['last_noise_free']:.2f})")
        if row["last_gap_low"] <= 0 <= row["last_gap_high"]:
            return (sentence + f"; at width {row['last_width']} its {LEVEL_TEXT} interval, "
                    f"{signed(row['last_gap_low'], 2)} to {signed(row['last_gap_high'], 2)}, contains 0{medians}.")
        return sentence + f"; it has changed sign{medians}."
    if row["outcome"] == NARROWS:
        if np.isfinite(row["closing_width"]):
            return (sentence + f"; extrapolated, it would close near width {_round_width(row['closing_width'])}, "
                    f"within {CLOSING_REACH:g}× the widest width measured.")
        return (sentence + "; the data do not reach a closing width (the fitted line reaches 0 only beyond "
                f"{CLOSING_REACH:g}× the widest width measured).")
    return sentence + "."


def trend_markdown(table: pd.DataFrame) -> str:
    """A markdown section: per arm a heading, its sentences as a list and its table; then RULE. Without a row,
    it says that no trend is stated and why."""
    heading = "## The gap to no noise against width\n\n"
    if table.empty:
        return (heading + f"No noisy setting of this group has {MIN_WIDTHS} or more widths with at least "
                f"{MIN_SEEDS} converged seeds on each side, so no trend with width is stated.\n\n{RULE}\n")
    sections = []
    for arm, rows in table.groupby("arm", sort=False):
        sentences = "".join(f"- {sentence}\n" for sentence in rows["sentence"])
        shown = _shown(rows).to_markdown(index=False, tablefmt="pipe", disable_numparse=True)
        sections.append(f"### {arm}\n\n{sentences}\n{shown}\n")
    return heading + "\n".join(sections) + f"\n{RULE}\n"


def _shown(rows: pd.DataFrame) -> pd.DataFrame:
    """An arm's rows as the markdown table shows them: gaps as fractions of the layer, signed."""
    def interval(value, low, high, decimals):
        return f"{signed(value, decimals)} ({signed(low, decimals)} to {signed(high, decimals)})"

    return pd.DataFrame({
        "setting": rows["setting"], "compressor": rows["compressor"],
        "widths": [f"{r.widths} ({r.first_width}–{r.last_width})" for r in rows.itertuples()],
        "gap at the narrowest": [signed(g, 2) for g in rows["first_gap"]],
        f"gap at the widest ({LEVEL_TEXT} interval)": [interval(r.last_gap, r.last_gap_low, r.last_gap_high, 2)
                                                     for r in rows.itertuples()],
        f"slope per doubling ({LEVEL_TEXT} interval)": [interval(r.slope, r.slope_low, r.slope_high, 3)
                                                      for r in rows.itertuples()],
        "outcome": rows["outcome"],
        "closing width": ["–" if math.isnan(w) else str(_round_width(w)) for w in rows["closing_width"]]})
