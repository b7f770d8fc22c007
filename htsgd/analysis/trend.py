"""Does the gap between noise and no noise at equal accuracy narrow, close, widen, or show no trend with width?

The verdict compares each noisy configuration with its baseline at one width. The paper's claim is about wide
networks, so the question here is how that comparison moves as width grows: per arm (a stopping rule, say),
noisy setting and compressor, the gap at a width is the median over seed pairs of the paired difference in the
frontier at 1 point (`comparisons`: the share removable within 1 point of no noise's reference accuracy, noise
minus no noise), at each width with at least MIN_PAIRS pairs. A line fitted through the gaps against
log2(width) gives the change per doubling; a bootstrap over seed pairs says whether that change is
distinguishable from none, and RULE turns slope and gaps into one word a reader can check against the table.

Works on `comparisons.pair_frame` of the trend's runs (`run_table.trend_runs`).
"""

import math

import numpy as np
import pandas as pd

from .comparisons import COMPRESSOR_NAMES, HEADLINE_THRESHOLD, MIN_PAIRS, differences

MIN_WIDTHS = 3  # widths with a gap needed before a slope is fitted: two points always lie on a line
LEVEL = 0.90  # of every bootstrap interval
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0  # a fixed seed per call, so that a record regenerates byte-identically
CLOSING_REACH = 2.0  # a closing width is extrapolated at most this many times the widest width measured
LEVEL_TEXT = f"{LEVEL * 100:g} %"
MEASURE = f"within_{HEADLINE_THRESHOLD:g}"  # the pair_frame measure whose gap the trend follows

NARROWS, CLOSES, WIDENS, NO_TREND, AT_FLOOR = "narrows", "closes", "widens", "shows no trend", "both at the floor"

GAP_COLUMNS = ["arm", "setting_label", "compressor", "width", "pairs", "noisy_median", "noise_free_median",
               "gap", "gap_low", "gap_high"]
TREND_COLUMNS = ["arm", "setting", "compressor", "widths", "pairs", "first_width", "last_width", "first_gap",
                 "last_gap", "last_gap_low", "last_gap_high", "last_noisy", "last_noise_free", "slope", "slope_low",
                 "slope_high", "outcome", "closing_width", "sentence"]

RULE = (
    "How the trend is read, per arm, noisy setting and compressor. At each width the gap is the median over seed "
    "pairs of noise's minus no noise's share removable within 1 point of no noise's reference accuracy, over "
    f"the widths with at least {MIN_PAIRS} pairs; with fewer than {MIN_WIDTHS} such widths no trend is stated. "
    "The slope is the ordinary least-squares line through the gaps against log2(width): the change per "
    f"doubling of width. Its {LEVEL_TEXT} interval, and each gap's, are percentile intervals over "
    f"{BOOTSTRAP_SAMPLES} bootstrap samples that resample the seed pairs at every width, with replacement "
    f"(fixed seed {BOOTSTRAP_SEED}, so the numbers regenerate). **{NO_TREND}**: the slope's interval reaches "
    f"0; **{NARROWS}**: it excludes 0 and the gap moves toward 0 (the slope's sign is opposite to the gap's at "
    "the narrowest width, or to the mean gap's where that one is 0); **closes**: it narrows, noise's median at "
    "the widest width is above 0, and there the gap's interval contains 0, or the gap has changed sign and is "
    f"smaller than at the narrowest width; **{AT_FLOOR}**: it would close, but both medians at the widest "
    f"width are 0; **{WIDENS}**: the gap moves away from 0, or crosses it and ends larger on the other side. "
    "Where the gap narrows but has not closed, the width at which the fitted line reaches 0 is stated only "
    f"when it is at most {CLOSING_REACH:g}× the widest width measured."
)


def _paired_widths(pairs: pd.DataFrame) -> dict:
    """Per (arm, noisy setting label, compressor): [(width, paired differences, noisy values, no-noise values)],
    narrowest first, over the widths with at least MIN_PAIRS pairs with a value."""
    found = {}
    if pairs.empty:
        return found
    for (arm, label, compressor, width), rows in pairs.groupby(["arm", "setting_label", "compressor", "width"],
                                                               sort=False):
        rows = rows[np.isfinite(differences(rows, MEASURE))]
        if len(rows) >= MIN_PAIRS:
            found.setdefault((arm, label, compressor), []).append(
                (width, differences(rows, MEASURE), rows[f"{MEASURE}_noise"].to_numpy(float),
                 rows[f"{MEASURE}_none"].to_numpy(float)))
    return {key: sorted(widths, key=lambda w: w[0]) for key, widths in found.items()}


def _bootstrap_gaps(widths: list) -> np.ndarray:
    """BOOTSTRAP_SAMPLES × widths gaps: the median paired difference with the seed pairs resampled with
    replacement at every width; the generator is fresh per call, so the same pairs always give the same samples."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    return np.column_stack([np.median(rng.choice(diffs, size=(BOOTSTRAP_SAMPLES, len(diffs))), axis=1)
                            for _, diffs, _, _ in widths])


def _interval(samples: np.ndarray, axis=None) -> tuple:
    """The central LEVEL percentile interval of `samples`."""
    tail = 100 * (1 - LEVEL) / 2
    return tuple(np.percentile(samples, [tail, 100 - tail], axis=axis))


def width_trend(pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both of what a report shows of the trend, from one bootstrap per (arm, noisy setting, compressor) of
    `pairs` (`comparisons.pair_frame` of the trend's runs): the gaps by width (GAP_COLUMNS) and the trend table
    (TREND_COLUMNS; the settings with at least MIN_WIDTHS widths), in `pairs`' order."""
    gap_rows, records = [], []
    for (arm, label, compressor), widths in _paired_widths(pairs).items():
        samples = _bootstrap_gaps(widths)
        low, high = _interval(samples, axis=0)
        rows = pd.DataFrame({
            "arm": arm, "setting_label": label, "compressor": compressor, "width": [w for w, *_ in widths],
            "pairs": [len(diffs) for _, diffs, _, _ in widths],
            "noisy_median": [np.median(noisy) for _, _, noisy, _ in widths],
            "noise_free_median": [np.median(none) for _, _, _, none in widths],
            "gap": [np.median(diffs) for _, diffs, _, _ in widths], "gap_low": low, "gap_high": high})
        gap_rows.append(rows)
        if len(rows) >= MIN_WIDTHS:
            records.append(_trend_record(rows, samples))
    gaps = pd.concat(gap_rows, ignore_index=True) if gap_rows else pd.DataFrame(columns=GAP_COLUMNS)
    return gaps, pd.DataFrame(records, columns=TREND_COLUMNS)


def _slopes(x: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """The least-squares slope of `gaps` (a row, or one per sample) against `x`."""
    dx = x - x.mean()
    return ((gaps - gaps.mean(axis=-1, keepdims=True)) * dx).sum(axis=-1) / (dx * dx).sum()


def classify(gaps, slope_low: float, slope_high: float, widest: tuple, widest_noisy: float = 1.0,
             widest_noise_free: float = 1.0) -> str:
    """One of NARROWS, CLOSES, AT_FLOOR, WIDENS, NO_TREND (see RULE), from the gaps (narrowest first), the
    slope's interval, the interval of the gap at the widest width and both sides' medians there."""
    if slope_low <= 0 <= slope_high:
        return NO_TREND
    gaps = np.asarray(gaps, dtype=float)
    start = np.sign(gaps[0]) or np.sign(gaps.mean())
    if start == 0 or np.sign(slope_low) == start:
        return WIDENS
    closed = widest[0] <= 0 <= widest[1] or (np.sign(gaps[-1]) == -start and abs(gaps[-1]) < abs(gaps[0]))
    if np.sign(gaps[-1]) == -start and not closed:  # crossed 0 and opened wider on the other side
        return WIDENS
    if not closed:
        return NARROWS
    if widest_noisy > 0:
        return CLOSES
    return AT_FLOOR if widest_noise_free == 0 else NARROWS


def closing_width(widths, gaps, slope: float) -> float:
    """The width where the line fitted to `gaps` against log2(`widths`) reaches 0, 2**(−intercept/slope);
    nan when that lies beyond CLOSING_REACH × the widest width (or the line is flat)."""
    x = np.log2(np.asarray(widths, dtype=float))
    if slope == 0:
        return math.nan
    width = 2 ** (x.mean() - np.mean(gaps) / slope)
    return float(width) if width <= CLOSING_REACH * max(widths) else math.nan


def _trend_record(rows: pd.DataFrame, samples: np.ndarray) -> dict:
    widths, gaps = rows["width"].to_numpy(), rows["gap"].to_numpy(dtype=float)
    x = np.log2(widths.astype(float))
    slope = float(_slopes(x, gaps))
    slope_low, slope_high = (float(v) for v in _interval(_slopes(x, samples)))
    widest = rows.iloc[-1]
    outcome = classify(gaps, slope_low, slope_high, (widest["gap_low"], widest["gap_high"]),
                       widest["noisy_median"], widest["noise_free_median"])
    record = {
        "arm": widest["arm"], "setting": widest["setting_label"], "compressor": widest["compressor"],
        "widths": len(rows), "pairs": int(rows["pairs"].sum()),
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
    """The sentence of one trend row (a mapping with TREND_COLUMNS, `sentence` aside): the outcome, the gaps at
    the narrowest and the widest width (shares of the layer), the slope per doubling with its interval, the
    pairs behind it, and for a narrowing gap where it would close or that the data do not reach that far."""
    named = row["setting"] if row["arm"] in row["setting"] else f"{row['setting']} ({row['arm']})"  # arm once
    verb = "ends with both sides at the floor" if row["outcome"] == AT_FLOOR else f"{row['outcome']} with width"
    sentence = (f"{COMPRESSOR_NAMES[row['compressor']].capitalize()}, {named}: the gap to no noise {verb}, from {signed(row['first_gap'], 2)} at width {row['first_width']} to "
                f"{signed(row['last_gap'], 2)} at width {row['last_width']} (slope {signed(row['slope'], 3)} per "
                f"doubling, {LEVEL_TEXT} interval {signed(row['slope_low'], 3)} to {signed(row['slope_high'], 3)}; "
                f"{row['pairs']} seed pairs over {row['widths']} widths)")
    medians = f" (noise's median {row['last_noisy']:.2f}, no noise's {row['last_noise_free']:.2f})"
    if row["outcome"] in (CLOSES, AT_FLOOR):
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
