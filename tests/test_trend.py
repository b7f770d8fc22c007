"""The trend of the paired gap to no noise with width: known answers on small synthetic seed pairs, and its figures.

The trend reads `comparisons.pair_frame` (one row per comparison, compressor and seed pair); the tests here
write such rows directly, with the frontier at 1 point (`within_1_noise`, `within_1_none`) as the values under
test. Which runs become pairs is `comparisons`' and is tested in test_comparisons.py.
"""

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.image import imread

from htsgd.analysis import trend
from htsgd.analysis.comparisons import differences
from htsgd.report import figures, trend_figures
from htsgd.report.markdown import trend_markdown

COMPRESSORS = ("columns", "entries", "rank")
COLUMNS = {"column pruning": "columns_within_1pt_of_noiseless",
           "entrywise magnitude": "entries_within_1pt_of_noiseless",
           "singular-value truncation": "rank_within_1pt_of_noiseless"}
WIDTHS = (500, 1000, 2000, 4000, 8000)
ARM, NO_NOISE, TYPE1, TYPE2 = "stop at 99 %", "no noise", "type 1, α=1.9, σ=0.03", "type 2, α=1.5, σ=0.1"


def seed_pairs(label, width, noisy, none, *, arm=ARM, compressors=COMPRESSORS):
    """pair_frame rows of one noisy setting `label` at `width` in `arm`: per compressor, seed i pairs noise's
    share `noisy[i]` with no noise's `none[i]` (a single `none` value stands for every seed)."""
    none = none if isinstance(none, (list, tuple)) else [none] * len(noisy)
    return [{"arm": arm, "setting_label": label, "compressor": compressor, "width": width, "seed": seed,
             "within_1_noise": a, "within_1_none": b}
            for compressor in compressors for seed, (a, b) in enumerate(zip(noisy, none), 1)]


def frame(*groups) -> pd.DataFrame:
    return pd.DataFrame([row for group in groups for row in group])


def linear_gap(first_gap, slope, *, noise_free=0.6, n_seeds=3, widths=WIDTHS, arm=ARM, label=TYPE1):
    """No noise at `noise_free` for every seed; the noisy setting at noise_free + first_gap + slope·log2(w/500),
    the same for every seed: the gap is exactly linear in log2(width), with zero spread."""
    return frame(*[seed_pairs(label, width, [noise_free + first_gap + slope * math.log2(width / 500)] * n_seeds,
                              noise_free, arm=arm, compressors=("columns",)) for width in widths])


def only_row(pairs) -> pd.Series:
    _, rows = trend.width_trend(pairs)
    assert len(rows) == 1
    return rows.iloc[0]


# ---------------------------------------------------------------- known answers

@pytest.mark.parametrize("first_gap, slope, outcome", [
    (-0.45, 0.1, trend.NARROWS),  # 0 reached at log2(w/500) = 4.5: width 11314, within 2 x 8000
    (-0.5, 0.05, trend.NARROWS),  # 0 reached at width 512000, beyond 2 x 8000
    (-0.3, 0.1, trend.CLOSES),  # −0.3 to +0.1: changes sign
    (-0.1, -0.1, trend.WIDENS),
    (0.2, 0.05, trend.WIDENS),
    (0.4, -0.05, trend.NARROWS),
    (0.0, 0.0, trend.NO_TREND),  # all gaps 0, slope interval [0, 0]
])
def test_a_gap_linear_in_log_width_gives_its_slope_a_degenerate_interval_and_the_outcome(first_gap, slope, outcome):
    row = only_row(linear_gap(first_gap, slope))
    assert row["slope"] == pytest.approx(slope, abs=1e-12)
    assert row["slope_low"] == row["slope_high"] == pytest.approx(row["slope"], abs=1e-15)
    assert row["last_gap_low"] == row["last_gap"] == row["last_gap_high"]
    assert row["first_gap"] == pytest.approx(first_gap, abs=1e-12)
    assert row["last_gap"] == pytest.approx(first_gap + 4 * slope, abs=1e-12)
    assert (row["widths"], row["first_width"], row["last_width"], row["pairs"]) == (5, 500, 8000, 15)
    assert row["outcome"] == outcome


def test_narrows_within_twice_the_widest_width_states_the_closing_width():
    row = only_row(linear_gap(-0.45, 0.1))
    assert row["closing_width"] == pytest.approx(500 * 2 ** 4.5)
    assert row["sentence"] == (
        "Column pruning, type 1, α=1.9, σ=0.03 (stop at 99 %): the gap to no noise narrows with width, from −0.45 "
        "at width 500 to −0.05 at width 8000 (slope +0.100 per doubling, 90 % interval +0.100 to +0.100; 15 seed "
        "pairs over 5 widths); extrapolated, it would close near width 11000, within 2× the widest width measured.")


def test_narrows_beyond_twice_the_widest_width_states_no_closing_width():
    row = only_row(linear_gap(-0.5, 0.05))
    assert math.isnan(row["closing_width"])
    assert row["sentence"].endswith(
        "the gap to no noise narrows with width, from −0.50 at width 500 to −0.30 at width 8000 (slope +0.050 per "
        "doubling, 90 % interval +0.050 to +0.050; 15 seed pairs over 5 widths); the data do not reach a closing "
        "width (the fitted line reaches 0 only beyond 2× the widest width measured).")
    # just past the limit: 0 reached at width 500·2^5.02 > 16000
    assert math.isnan(only_row(linear_gap(-0.502, 0.1))["closing_width"])


def test_closes_when_the_gap_changes_sign_or_its_interval_at_the_widest_width_contains_zero():
    row = only_row(linear_gap(-0.3, 0.1))
    assert math.isnan(row["closing_width"])
    assert row["sentence"].endswith("from −0.30 at width 500 to +0.10 at width 8000 (slope +0.100 per doubling, "
                                    "90 % interval +0.100 to +0.100; 15 seed pairs over 5 widths); it has changed "
                                    "sign (noise's median 0.70, no noise's 0.60).")
    # gaps −0.4 to −0.1 without spread, then five pairs at width 8000 with noise 0.50 to 0.70: median gap −0.02
    pairs = pd.concat([linear_gap(-0.4, 0.1, widths=WIDTHS[:4]),
                       frame(seed_pairs(TYPE1, 8000, [0.5, 0.56, 0.58, 0.64, 0.7], 0.6, compressors=("columns",)))])
    row = only_row(pairs)
    assert row["last_gap"] == pytest.approx(-0.02)
    assert row["last_gap_low"] < 0 < row["last_gap_high"] and row["slope_low"] > 0
    assert row["outcome"] == trend.CLOSES and math.isnan(row["closing_width"])
    assert row["sentence"].endswith(f"; at width 8000 its 90 % interval, {trend.signed(row['last_gap_low'], 2)} "
                                    f"to {trend.signed(row['last_gap_high'], 2)}, contains 0 (noise's median 0.58, "
                                    "no noise's 0.60).")


def test_a_gap_that_closes_with_both_sides_at_zero_is_at_the_floor_not_closed():
    """Noise at 0.2, 0.1, 0.0 against no noise at 0.3, 0.1, 0.0: the gap narrows to 0 because both fell to 0."""
    pairs = frame(*[seed_pairs(TYPE1, width, [noisy] * 3, none, compressors=("columns",))
                    for width, noisy, none in ((500, 0.2, 0.3), (1000, 0.1, 0.1), (2000, 0.0, 0.0))])
    row = only_row(pairs)
    assert (row["first_gap"], row["last_gap"], row["last_noisy"], row["last_noise_free"]) == pytest.approx(
        (-0.1, 0.0, 0.0, 0.0))
    assert row["outcome"] == trend.AT_FLOOR
    assert "the gap to no noise ends with both sides at the floor, from −0.10 at width 500" in row["sentence"]
    assert row["sentence"].endswith("contains 0 (noise's median 0.00, no noise's 0.00).")


def test_widens_sentence():
    assert only_row(linear_gap(-0.1, -0.1))["sentence"] == (
        "Column pruning, type 1, α=1.9, σ=0.03 (stop at 99 %): the gap to no noise widens with width, from −0.10 "
        "at width 500 to −0.50 at width 8000 (slope −0.100 per doubling, 90 % interval −0.100 to −0.100; 15 seed "
        "pairs over 5 widths).")


def test_pairs_with_spread_and_zero_gap_show_no_trend():
    pairs = frame(*[seed_pairs(TYPE1, width, [0.4, 0.5, 0.6, 0.7, 0.8], 0.6, compressors=("columns",))
                    for width in WIDTHS])
    row = only_row(pairs)
    assert row["slope"] == 0 and row["slope_low"] < 0 < row["slope_high"]
    assert row["outcome"] == trend.NO_TREND and math.isnan(row["closing_width"])
    assert row["sentence"] == (
        "Column pruning, type 1, α=1.9, σ=0.03 (stop at 99 %): the gap to no noise shows no trend with width, "
        f"from +0.00 at width 500 to +0.00 at width 8000 (slope +0.000 per doubling, 90 % interval "
        f"{trend.signed(row['slope_low'], 3)} to {trend.signed(row['slope_high'], 3)}; 25 seed pairs over 5 widths).")


def test_signed_keeps_the_sign_of_a_value_that_rounds_to_zero():
    assert [trend.signed(v, 2) for v in (0.0625, -0.58, -0.004, 0.004, 0.0, -0.0)] == [
        "+0.06", "−0.58", "−0.00", "+0.00", "+0.00", "+0.00"]


@pytest.mark.parametrize("gaps, slope_interval, widest_interval, medians, outcome", [
    ([-0.3, -0.2, -0.1], (0.05, 0.1), (-0.15, -0.05), (0.5, 0.6), trend.NARROWS),
    ([-0.3, -0.2, -0.1], (0.05, 0.1), (-0.2, 0.0), (0.5, 0.6), trend.CLOSES),  # the interval touches 0
    ([-0.3, 0.0, 0.2], (0.05, 0.3), (0.1, 0.3), (0.5, 0.3), trend.CLOSES),  # crossed 0, smaller on the other side
    ([-0.1, -0.2, -0.3], (-0.1, -0.05), (-0.35, -0.25), (0.2, 0.5), trend.WIDENS),
    # crossing 0 and ending larger on the other side widens: +0.03 to -0.25
    ([0.03, -0.1, -0.25], (-0.2, -0.1), (-0.3, -0.2), (0.2, 0.45), trend.WIDENS),
    ([0.0, -0.1, -0.2], (-0.1, -0.1), (-0.2, -0.2), (0.2, 0.4), trend.WIDENS),  # g0 = 0: the mean gap's sign
    ([0.0, 0.0, 0.0], (0.0, 0.0), (0.0, 0.0), (0.5, 0.5), trend.NO_TREND),
    ([-0.3, -0.2, -0.1], (-0.01, 0.1), (-0.2, 0.0), (0.5, 0.6), trend.NO_TREND),
    # closes only when noise's median at the widest width is above 0: both at 0 is the floor
    ([-0.3, -0.2, 0.0], (0.05, 0.2), (-0.1, 0.0), (0.0, 0.0), trend.AT_FLOOR),
    ([-0.3, -0.2, -0.02], (0.05, 0.2), (-0.1, 0.0), (0.0, 0.02), trend.NARROWS),  # noise at 0, no noise above
])
def test_classify_on_hand_cases(gaps, slope_interval, widest_interval, medians, outcome):
    assert trend.classify(gaps, *slope_interval, widest_interval, *medians) == outcome


# ---------------------------------------------------------------- which pairs count

def test_a_width_with_fewer_than_min_pairs_drops_out():
    pairs = linear_gap(-0.45, 0.1)
    thinned = pairs[~((pairs["width"] == 8000) & (pairs["seed"] > 1))]  # one pair left at 8000
    gaps, rows = trend.width_trend(thinned)
    assert gaps["width"].tolist() == [500, 1000, 2000, 4000]
    assert rows.iloc[0]["last_width"] == 4000 and rows.iloc[0]["pairs"] == 12


def test_pairs_with_a_non_finite_value_do_not_count():
    pairs = linear_gap(-0.45, 0.1)
    pairs.loc[pairs["width"] == 500, "within_1_noise"] = [np.nan, 0.15, 0.15]
    pairs.loc[pairs["width"] == 1000, "within_1_none"] = [0.6, np.inf, 0.6]
    gaps, _ = trend.width_trend(pairs)
    assert gaps["pairs"].tolist() == [2, 2, 3, 3, 3]
    assert gaps["gap"].iloc[0] == pytest.approx(-0.45)


def test_the_gap_is_the_median_of_the_paired_differences_not_the_difference_of_the_medians():
    """Noise 0.1, 0.5, 0.9 against no noise 0.6, 0.0, 0.7, seed by seed, differ by −0.5, +0.5, +0.2: the gap is
    their median +0.2, while the sides' medians differ by 0.5 − 0.6 = −0.1."""
    gaps, _ = trend.width_trend(frame(seed_pairs(TYPE1, 500, [0.1, 0.5, 0.9], [0.6, 0.0, 0.7],
                                                 compressors=("columns",))))
    [row] = gaps.itertuples()
    assert (row.gap, row.noisy_median, row.noise_free_median, row.pairs) == pytest.approx((0.2, 0.5, 0.6, 3))


def test_fewer_than_min_widths_give_no_row_and_the_markdown_says_so():
    pairs = linear_gap(-0.45, 0.1, widths=WIDTHS[:trend.MIN_WIDTHS - 1])
    gaps, empty = trend.width_trend(pairs)
    assert len(gaps) == trend.MIN_WIDTHS - 1 and list(gaps.columns) == trend.GAP_COLUMNS
    assert empty.empty and list(empty.columns) == trend.TREND_COLUMNS
    text = trend_markdown(empty)
    assert "has 3 or more widths with at least 2 seed pairs, so no trend with width is stated" in text
    gaps, empty = trend.width_trend(pairs.iloc[:0])
    assert gaps.empty and list(gaps.columns) == trend.GAP_COLUMNS and empty.empty


# ---------------------------------------------------------------- bootstrap, table and markdown

def spread() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two arms, two noisy settings, 3 to 5 seeds with spread, a different value per compressor: the run table
    the figures read and its seed pairs (each noisy run with the no-noise run of its arm, width and seed)."""
    rng = np.random.default_rng(7)
    runs, pairs = [], []
    for arm in (ARM, "fixed 400 steps"):
        for width in WIDTHS:
            k, n = math.log2(width / 500), int(rng.integers(3, 6))
            values = {label: centre + rng.normal(0, 0.05, n)
                      for label, centre in ((NO_NOISE, 0.6), (TYPE1, 0.2 + 0.08 * k), (TYPE2, 0.6 - 0.05 * k))}
            for label, drawn in values.items():
                runs += seeds(label, width, drawn, arm=arm)
            for label in (TYPE1, TYPE2):  # as pair_frame orders them: comparison, compressor, seed
                for i, compressor in enumerate(COMPRESSORS):
                    pairs += seed_pairs(label, width, list(values[label] * (1 - 0.2 * i)),
                                        list(values[NO_NOISE] * (1 - 0.2 * i)), arm=arm, compressors=(compressor,))
    runs = pd.DataFrame(runs)
    for i, column in enumerate(COLUMNS.values()):
        runs[column] = runs[column] * (1 - 0.2 * i)
    return runs, pd.DataFrame(pairs)


def seeds(label, width, values, *, arm=ARM, counted=True, first_seed=1):
    """Run-table rows, one per value, every compressor column holding it: setting `label` at `width` in `arm`."""
    return [{"id": f"{arm}/{label}/{width}/{seed}", "seed": seed, "width": width, "setting": f"{arm}|{label}",
             "setting_label": label, "noisy": label != NO_NOISE, "counted": counted, "arm": arm,
             "steps": 40 * width ** 0.5 + seed, **{column: value for column in COLUMNS.values()}}
            for seed, value in enumerate(values, first_seed)]


def test_the_bootstrap_is_deterministic_and_its_intervals_contain_the_estimates():
    _, pairs = spread()
    (gaps, first), (gaps_again, second) = trend.width_trend(pairs), trend.width_trend(pairs)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(gaps, gaps_again)
    assert trend_markdown(first) == trend_markdown(second)
    assert len(first) == 2 * 2 * 3
    assert list(first[["arm", "setting", "compressor"]].itertuples(index=False, name=None))[:4] == [
        (ARM, TYPE1, compressor) for compressor in COMPRESSORS] + [(ARM, TYPE2, "columns")]
    assert ((first["slope_low"] <= first["slope"]) & (first["slope"] <= first["slope_high"])).all()
    assert ((first["last_gap_low"] <= first["last_gap"]) & (first["last_gap"] <= first["last_gap_high"])).all()
    assert ((gaps["gap_low"] <= gaps["gap"]) & (gaps["gap"] <= gaps["gap_high"])).all()
    assert (gaps["gap_low"] < gaps["gap_high"]).all()
    type1 = first[(first["setting"] == TYPE1) & (first["arm"] == ARM)].iloc[0]
    assert type1["slope"] > 0 and type1["outcome"] in (trend.NARROWS, trend.CLOSES)


def test_markdown_has_a_table_per_arm_and_the_rule():
    _, pairs = spread()
    _, rows = trend.width_trend(pairs)
    text = trend_markdown(rows)
    assert text.index(f"*{ARM}*") < text.index("*fixed 400 steps*")
    assert "| setting | compressor | widths (pairs) |" in text and "| 500–8000 (" in text
    assert text.count(f"| {TYPE1} | columns |") == 2  # once per arm
    assert text.rstrip().endswith(trend.RULE)


# ---------------------------------------------------------------- figures

def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def drawn_pairs(ax) -> list[list[tuple]]:
    """Per set of points scattered on `ax` (a gap figure's: one per setting, in the legend's order), each point as
    (the width tick it is drawn beside, its y), sorted."""
    widths = [int(tick.get_text()) for tick in ax.get_xticklabels()]
    return [sorted((min(widths, key=lambda w: abs(math.log(x / w))), y) for x, y in points.get_offsets())
            for points in ax.collections if isinstance(points, PathCollection)]


def pairs_of(pairs, arm, compressor, label) -> list[tuple]:
    """(width, paired difference) of each seed pair of `label` in `arm` under `compressor`, sorted."""
    rows = pairs[(pairs["arm"] == arm) & (pairs["compressor"] == compressor) & (pairs["setting_label"] == label)]
    return sorted(zip(rows["width"], differences(rows, trend.MEASURE)))


def test_figures_with_two_arms(tmp_path):
    runs, pairs = spread()
    fig = trend_figures.equal_accuracy_width_figure(runs, COLUMNS, "grp (digits)")
    assert fig.get_suptitle().startswith("grp (digits): fraction of the layer removable")
    assert len(fig.axes) == 2 * (3 + 1)
    assert [ax.get_title() for ax in fig.axes[:4]] == [f"{ARM}:\n{name}" for name in COLUMNS] + [
        f"{ARM}:\nsteps taken"]
    assert fig.axes[4].get_title() == "fixed 400 steps:\ncolumn pruning"
    assert legend_texts(fig.axes[0]) == [NO_NOISE, TYPE1, TYPE2]
    assert fig.axes[3].get_yscale() == "log" and fig.axes[0].get_xscale() == "log"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [str(w) for w in WIDTHS]
    figures.save(fig, tmp_path / "width.png")
    gaps, _ = trend.width_trend(pairs)
    fig = trend_figures.gap_figure(gaps, pairs, runs, "grp (digits)")
    assert len(fig.axes) == 2 * 3
    assert legend_texts(fig.axes[0]) == [TYPE1, TYPE2]
    for ax, arm, compressor in ((fig.axes[0], ARM, "columns"), (fig.axes[4], "fixed 400 steps", "entries")):
        assert drawn_pairs(ax) == [pairs_of(pairs, arm, compressor, label) for label in (TYPE1, TYPE2)]
    zero = [line for line in fig.axes[0].lines if list(line.get_ydata()) == [0, 0]]
    assert len(zero) == 1
    figures.save(fig, tmp_path / "gap.png")
    for name in ("width.png", "gap.png"):
        image = imread(tmp_path / name)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200


def test_figures_with_one_arm_and_settings_missing_at_some_widths():
    groups, pairs = [], []
    for width in WIDTHS[:4]:
        groups.append(seeds(NO_NOISE, width, [0.6, 0.62, 0.64]))
        if width != 2000:
            groups.append(seeds(TYPE1, width, [0.3, 0.35, 0.4]))
            pairs += seed_pairs(TYPE1, width, [0.3, 0.35, 0.4], [0.6, 0.62, 0.64])
        if width >= 2000:
            groups.append(seeds(TYPE2, width, [0.5, 0.55]))
            pairs += seed_pairs(TYPE2, width, [0.5, 0.55], [0.6, 0.62])
    groups.append(seeds(TYPE1, 8000, [0.9, 0.9], counted=False))
    pairs += seed_pairs(TYPE1, 2000, [0.1], [0.6])  # one pair: too few for a gap at 2000, so not drawn either
    pairs += seed_pairs(TYPE1, 500, [math.nan], [0.6])  # a pair without a value: no point
    runs, pairs = pd.DataFrame([run for group in groups for run in group]), pd.DataFrame(pairs)
    fig = trend_figures.equal_accuracy_width_figure(runs, COLUMNS, "grp")
    assert len(fig.axes) == 3 + 1
    assert legend_texts(fig.axes[0]) == [NO_NOISE, TYPE1, TYPE2]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [str(w) for w in WIDTHS]
    gaps, _ = trend.width_trend(pairs)
    fig = trend_figures.gap_figure(gaps, pairs, runs, "grp")
    assert len(fig.axes) == 3
    assert legend_texts(fig.axes[2]) == [TYPE1, TYPE2]
    assert list(fig.axes[0].lines[0].get_xdata()) == [500, 1000, 4000]  # type 1 has no pairs at 2000
    type1 = [(w, round(a - b, 9)) for w in (500, 1000, 4000) for a, b in zip([0.3, 0.35, 0.4], [0.6, 0.62, 0.64])]
    type2 = [(w, round(a - b, 9)) for w in (2000, 4000) for a, b in zip([0.5, 0.55], [0.6, 0.62])]
    assert [[(w, round(y, 9)) for w, y in points] for points in drawn_pairs(fig.axes[0])] == [sorted(type1),
                                                                                              sorted(type2)]
    gaps, _ = trend.width_trend(pairs[pairs["compressor"] != "entries"])
    fig = trend_figures.gap_figure(gaps, pairs, runs, "grp")
    assert len(fig.axes) == 3 and [t.get_text() for t in fig.axes[1].texts] == [trend_figures.NOTHING_TO_DRAW]


def test_figures_without_anything_to_draw_say_so():
    runs = pd.DataFrame(seeds(NO_NOISE, 500, [0.6, 0.6]) + seeds(NO_NOISE, 1000, [0.6, 0.6]))
    gaps, _ = trend.width_trend(pd.DataFrame())
    fig = trend_figures.gap_figure(gaps, pd.DataFrame(), runs, "grp")
    assert len(fig.axes) == 1 and fig.axes[0].texts[0].get_text() == trend_figures.NOTHING_TO_DRAW
    fig = trend_figures.equal_accuracy_width_figure(runs.iloc[:0], COLUMNS, "grp")
    assert len(fig.axes) == 1 and fig.axes[0].texts[0].get_text() == "no runs"
