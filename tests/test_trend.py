"""The trend of the gap to no noise with width: known answers on small synthetic run tables, and its figures."""

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from htsgd.analysis import trend
from htsgd.report import figures, trend_figures

COLUMNS = {"column pruning": "columns_within_1pt_of_noiseless",
           "entrywise magnitude": "entries_within_1pt_of_noiseless",
           "singular-value truncation": "rank_within_1pt_of_noiseless"}
WIDTHS = (500, 1000, 2000, 4000, 8000)
ARM, NO_NOISE, TYPE1 = "stop at 99 %", "no noise", "type 1, α=1.9, σ=0.03"


def seeds(label, width, values, *, arm=ARM, converged=True, baseline=None, first_seed=1):
    """One run per value, every compressor column holding it: setting `label` (noise-free when it is NO_NOISE,
    or starts with it) at `width` in `arm`; its baseline is the arm and width unless `baseline` is given."""
    return [{"id": f"{arm}/{label}/{width}/{seed}", "seed": seed, "width": width, "setting": f"{arm}|{label}",
             "setting_label": label, "noisy": not label.startswith(NO_NOISE), "converged": converged, "arm": arm,
             "baseline": baseline or f"{arm}|{width}", "steps": 40 * width ** 0.5 + seed,
             **{column: value for column in COLUMNS.values()}}
            for seed, value in enumerate(values, first_seed)]


def table(*groups) -> pd.DataFrame:
    return pd.DataFrame([run for group in groups for run in group])


def linear_gap(first_gap, slope, *, noise_free=0.6, n_seeds=3, widths=WIDTHS, arm=ARM, label=TYPE1):
    """No noise at `noise_free` for every seed; the noisy setting at noise_free + first_gap + slope·log2(w/500),
    the same for every seed: the gap is exactly linear in log2(width), with zero spread."""
    groups = []
    for width in widths:
        groups.append(seeds(NO_NOISE, width, [noise_free] * n_seeds, arm=arm))
        groups.append(seeds(label, width, [noise_free + first_gap + slope * math.log2(width / 500)] * n_seeds,
                            arm=arm))
    return table(*groups)


def only_row(runs) -> pd.Series:
    rows = trend.trend_table(runs, {"column pruning": COLUMNS["column pruning"]})
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
    assert (row["widths"], row["first_width"], row["last_width"]) == (5, 500, 8000)
    assert row["outcome"] == outcome


def test_narrows_within_twice_the_widest_width_states_the_closing_width():
    row = only_row(linear_gap(-0.45, 0.1))
    assert row["closing_width"] == pytest.approx(500 * 2 ** 4.5)
    assert row["sentence"] == (
        "Column pruning, type 1, α=1.9, σ=0.03 (stop at 99 %): the gap to no noise narrows with width, from −0.45 "
        "at width 500 to −0.05 at width 8000 (slope +0.100 per doubling, 90 % interval +0.100 to +0.100); "
        "extrapolated, it would close near width 11000, within 2× the widest width measured.")


def test_narrows_beyond_twice_the_widest_width_states_no_closing_width():
    row = only_row(linear_gap(-0.5, 0.05))
    assert math.isnan(row["closing_width"])
    assert row["sentence"].endswith(
        "the gap to no noise narrows with width, from −0.50 at width 500 to −0.30 at width 8000 (slope +0.050 per "
        "doubling, 90 % interval +0.050 to +0.050); the data do not reach a closing width (the fitted line "
        "reaches 0 only beyond 2× the widest width measured).")
    # just past the limit: 0 reached at width 500·2^5.02 > 16000
    assert math.isnan(only_row(linear_gap(-0.502, 0.1))["closing_width"])


def test_closes_when_the_gap_changes_sign_or_its_interval_at_the_widest_width_contains_zero():
    row = only_row(linear_gap(-0.3, 0.1))
    assert math.isnan(row["closing_width"])
    assert row["sentence"].endswith("from −0.30 at width 500 to +0.10 at width 8000 (slope +0.100 per doubling, "
                                    "90 % interval +0.100 to +0.100); it has changed sign (noise's median 0.70, "
                                    "no noise's 0.60).")
    # gaps −0.4 to −0.1 without spread, then noisy seeds 0.50 to 0.70 at width 8000: median gap −0.02
    runs = pd.concat([linear_gap(-0.4, 0.1, widths=WIDTHS[:4]),
                      table(seeds(NO_NOISE, 8000, [0.6] * 3), seeds(TYPE1, 8000, [0.5, 0.56, 0.58, 0.64, 0.7]))])
    row = only_row(runs)
    assert row["last_gap"] == pytest.approx(-0.02)
    assert row["last_gap_low"] < 0 < row["last_gap_high"] and row["slope_low"] > 0
    assert row["outcome"] == trend.CLOSES and math.isnan(row["closing_width"])
    assert row["sentence"].endswith(f"; at width 8000 its 90 % interval, {trend.signed(row['last_gap_low'], 2)} "
                                    f"to {trend.signed(row['last_gap_high'], 2)}, contains 0 (noise's median 0.58, "
                                    "no noise's 0.60).")


def test_widens_sentence():
    assert only_row(linear_gap(-0.1, -0.1))["sentence"] == (
        "Column pruning, type 1, α=1.9, σ=0.03 (stop at 99 %): the gap to no noise widens with width, from −0.10 "
        "at width 500 to −0.50 at width 8000 (slope −0.100 per doubling, 90 % interval −0.100 to −0.100).")


def test_noisy_seeds_with_spread_and_zero_gap_show_no_trend():
    runs = table(*[group for width in WIDTHS for group in (seeds(NO_NOISE, width, [0.6] * 3),
                                                           seeds(TYPE1, width, [0.4, 0.5, 0.6, 0.7, 0.8]))])
    row = only_row(runs)
    assert row["slope"] == 0 and row["slope_low"] < 0 < row["slope_high"]
    assert row["outcome"] == trend.NO_TREND and math.isnan(row["closing_width"])
    assert row["sentence"] == (
        "Column pruning, type 1, α=1.9, σ=0.03 (stop at 99 %): the gap to no noise shows no trend with width, "
        f"from +0.00 at width 500 to +0.00 at width 8000 (slope +0.000 per doubling, 90 % interval "
        f"{trend.signed(row['slope_low'], 3)} to {trend.signed(row['slope_high'], 3)}).")


def test_signed_keeps_the_sign_of_a_value_that_rounds_to_zero():
    assert [trend.signed(v, 2) for v in (0.0625, -0.58, -0.004, 0.004, 0.0, -0.0)] == [
        "+0.06", "−0.58", "−0.00", "+0.00", "+0.00", "+0.00"]


@pytest.mark.parametrize("gaps, slope_interval, widest_interval, outcome", [
    ([-0.3, -0.2, -0.1], (0.05, 0.1), (-0.15, -0.05), trend.NARROWS),
    ([-0.3, -0.2, -0.1], (0.05, 0.1), (-0.2, 0.0), trend.CLOSES),  # the interval touches 0
    ([-0.3, 0.0, 0.2], (0.05, 0.3), (0.1, 0.3), trend.CLOSES),  # crossed 0, smaller on the other side
    ([-0.1, -0.2, -0.3], (-0.1, -0.05), (-0.35, -0.25), trend.WIDENS),
    # crossing 0 and ending larger on the other side widens: +0.03 to -0.25
    ([0.03, -0.1, -0.25], (-0.2, -0.1), (-0.3, -0.2), trend.WIDENS),
    ([0.0, -0.1, -0.2], (-0.1, -0.1), (-0.2, -0.2), trend.WIDENS),  # g0 = 0: the mean gap's sign, negative
    ([0.0, 0.0, 0.0], (0.0, 0.0), (0.0, 0.0), trend.NO_TREND),
    ([-0.3, -0.2, -0.1], (-0.01, 0.1), (-0.2, 0.0), trend.NO_TREND),
])
def test_classify_on_hand_cases(gaps, slope_interval, widest_interval, outcome):
    assert trend.classify(gaps, *slope_interval, widest_interval) == outcome


# ---------------------------------------------------------------- which runs count

def test_only_converged_runs_count():
    clean = linear_gap(-0.45, 0.1)
    unconverged = table(*[seeds(label, width, [0.99] * 3, converged=False, first_seed=10)
                          for width in WIDTHS for label in (NO_NOISE, TYPE1)])
    with_unconverged = pd.concat([clean, unconverged], ignore_index=True)
    pd.testing.assert_frame_equal(trend.trend_table(with_unconverged, COLUMNS), trend.trend_table(clean, COLUMNS))
    # at width 8000 one converged noisy seed is left: too few, so the width drops out
    thinned = with_unconverged[~((with_unconverged["width"] == 8000) & with_unconverged["noisy"]
                                 & with_unconverged["converged"] & (with_unconverged["seed"] > 1))]
    gaps = trend.gap_by_width(thinned, COLUMNS["column pruning"])
    assert gaps["width"].tolist() == [500, 1000, 2000, 4000]
    assert only_row(thinned)["last_width"] == 4000


def test_non_finite_values_do_not_count():
    runs = linear_gap(-0.45, 0.1)
    runs.loc[runs["noisy"] & (runs["width"] == 500), COLUMNS["column pruning"]] = [np.nan, 0.15, 0.15]
    gaps = trend.gap_by_width(runs, COLUMNS["column pruning"])
    assert gaps["n_noisy"].tolist() == [2, 3, 3, 3, 3]


def test_noisy_runs_pair_with_the_no_noise_runs_of_their_baseline_only_pooled():
    groups = []
    for width in WIDTHS[:3]:
        groups += [seeds(TYPE1, width, [0.5] * 3),
                   seeds(NO_NOISE, width, [0.6, 0.6, 0.7]),  # same baseline: pooled
                   seeds(f"{NO_NOISE}, σ=0.1", width, [0.7, 0.7, 0.7], first_seed=4),
                   seeds(f"{NO_NOISE}, momentum=0.9", width, [0.1] * 3, baseline=f"other|{width}")]
    gaps = trend.gap_by_width(table(*groups), COLUMNS["column pruning"])
    assert gaps["n_noise_free"].tolist() == [6, 6, 6]
    assert gaps["noise_free_median"].tolist() == [0.7, 0.7, 0.7]
    assert gaps["gap"].tolist() == pytest.approx([-0.2] * 3)


def test_fewer_than_min_widths_give_no_row_and_the_markdown_says_so():
    runs = linear_gap(-0.45, 0.1, widths=WIDTHS[:trend.MIN_WIDTHS - 1])
    assert len(trend.gap_by_width(runs, COLUMNS["column pruning"])) == trend.MIN_WIDTHS - 1
    empty = trend.trend_table(runs, COLUMNS)
    assert empty.empty and list(empty.columns) == trend.TREND_COLUMNS
    text = trend.trend_markdown(empty)
    assert "has 3 or more widths with at least 2 converged seeds on each side, so no trend with width is stated" \
        in text
    assert trend.gap_by_width(runs[runs["noisy"]], COLUMNS["column pruning"]).columns.tolist() == trend.GAP_COLUMNS


# ---------------------------------------------------------------- bootstrap, table and markdown

def spread_runs() -> pd.DataFrame:
    """Two arms, two noisy settings, 3 to 5 seeds with spread, a different value per compressor."""
    rng = np.random.default_rng(7)
    groups = []
    for arm in (ARM, "fixed 400 steps"):
        for width in WIDTHS:
            k = math.log2(width / 500)
            for label, centre in ((NO_NOISE, 0.6), (TYPE1, 0.2 + 0.08 * k), ("type 2, α=1.5, σ=0.1", 0.6 - 0.05 * k)):
                groups.append(seeds(label, width, list(centre + rng.normal(0, 0.05, rng.integers(3, 6))), arm=arm))
    runs = table(*groups)
    for i, column in enumerate(COLUMNS.values()):
        runs[column] = runs[column] * (1 - 0.2 * i)
    return runs


def test_one_bootstrap_gives_the_same_gaps_and_table_as_each_alone():
    runs = spread_runs()
    gaps, table_ = trend.width_trend(runs, COLUMNS)
    pd.testing.assert_frame_equal(table_, trend.trend_table(runs, COLUMNS))
    assert list(gaps) == list(COLUMNS)
    for name, column in COLUMNS.items():
        pd.testing.assert_frame_equal(gaps[name], trend.gap_by_width(runs, column))


def test_the_bootstrap_is_deterministic_and_its_intervals_contain_the_estimates():
    runs = spread_runs()
    first, second = trend.trend_table(runs, COLUMNS), trend.trend_table(runs, COLUMNS)
    pd.testing.assert_frame_equal(first, second)
    assert trend.trend_markdown(first) == trend.trend_markdown(second)
    assert len(first) == 2 * 2 * 3
    assert list(first[["arm", "setting", "compressor"]].itertuples(index=False, name=None))[:4] == [
        (ARM, TYPE1, name) for name in COLUMNS] + [(ARM, "type 2, α=1.5, σ=0.1", "column pruning")]
    assert ((first["slope_low"] <= first["slope"]) & (first["slope"] <= first["slope_high"])).all()
    assert ((first["last_gap_low"] <= first["last_gap"]) & (first["last_gap"] <= first["last_gap_high"])).all()
    gaps = trend.gap_by_width(runs, COLUMNS["column pruning"])
    assert ((gaps["gap_low"] <= gaps["gap"]) & (gaps["gap"] <= gaps["gap_high"])).all()
    assert (gaps["gap_low"] < gaps["gap_high"]).all()
    type1 = first[(first["setting"] == TYPE1) & (first["arm"] == ARM)].iloc[0]
    assert type1["slope"] > 0 and type1["outcome"] in (trend.NARROWS, trend.CLOSES)


def test_markdown_has_a_heading_per_arm_the_sentences_the_table_and_the_rule():
    table_ = trend.trend_table(spread_runs(), COLUMNS)
    text = trend.trend_markdown(table_)
    assert text.index(f"### {ARM}") < text.index("### fixed 400 steps")
    for sentence in table_["sentence"]:
        assert f"- {sentence}\n" in text
    assert "| setting " in text and "| outcome " in text and "| 5 (500–8000) " in text
    assert text.rstrip().endswith(trend.RULE)


# ---------------------------------------------------------------- figures

def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_figures_with_two_arms(tmp_path):
    runs = spread_runs()
    fig = trend_figures.equal_accuracy_width_figure(runs, COLUMNS, "grp (digits)")
    assert fig.get_suptitle().startswith("grp (digits): fraction of the layer removable")
    assert len(fig.axes) == 2 * (3 + 1)
    assert [ax.get_title() for ax in fig.axes[:4]] == [f"{ARM}:\n{name}" for name in COLUMNS] + [
        f"{ARM}:\nsteps taken"]
    assert fig.axes[4].get_title() == "fixed 400 steps:\ncolumn pruning"
    assert legend_texts(fig.axes[0]) == [NO_NOISE, TYPE1, "type 2, α=1.5, σ=0.1"]
    assert fig.axes[3].get_yscale() == "log" and fig.axes[0].get_xscale() == "log"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [str(w) for w in WIDTHS]
    figures.save(fig, tmp_path / "width.png")
    gaps = {name: trend.gap_by_width(runs, column) for name, column in COLUMNS.items()}
    fig = trend_figures.gap_figure(gaps, runs, "grp (digits)")
    assert len(fig.axes) == 2 * 3
    assert legend_texts(fig.axes[0]) == [TYPE1, "type 2, α=1.5, σ=0.1"]
    zero = [line for line in fig.axes[0].lines if list(line.get_ydata()) == [0, 0]]
    assert len(zero) == 1
    figures.save(fig, tmp_path / "gap.png")
    for name in ("width.png", "gap.png"):
        image = imread(tmp_path / name)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200


def test_figures_with_one_arm_and_settings_missing_at_some_widths():
    groups = []
    for width in WIDTHS[:4]:
        groups.append(seeds(NO_NOISE, width, [0.6, 0.62, 0.64]))
        if width != 2000:
            groups.append(seeds(TYPE1, width, [0.3, 0.35, 0.4]))
        if width >= 2000:
            groups.append(seeds("type 2, α=1.5, σ=0.1", width, [0.5, 0.55]))
    groups.append(seeds(TYPE1, 8000, [0.9, 0.9], converged=False))
    runs = table(*groups)
    fig = trend_figures.equal_accuracy_width_figure(runs, COLUMNS, "grp")
    assert len(fig.axes) == 3 + 1
    assert legend_texts(fig.axes[0]) == [NO_NOISE, TYPE1, "type 2, α=1.5, σ=0.1"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [str(w) for w in WIDTHS]
    gaps = {name: trend.gap_by_width(runs, column) for name, column in COLUMNS.items()}
    fig = trend_figures.gap_figure(gaps, runs, "grp")
    assert len(fig.axes) == 3
    assert legend_texts(fig.axes[2]) == [TYPE1, "type 2, α=1.5, σ=0.1"]
    assert list(fig.axes[0].lines[0].get_xdata()) == [500, 1000, 4000]  # type 1 has no seeds at 2000
    runs.loc[runs["noisy"], COLUMNS["entrywise magnitude"]] = np.nan
    gaps = {name: trend.gap_by_width(runs, column) for name, column in COLUMNS.items()}
    fig = trend_figures.gap_figure(gaps, runs, "grp")
    assert len(fig.axes) == 3 and [t.get_text() for t in fig.axes[1].texts] == [trend_figures.NOTHING_TO_DRAW]


def test_figures_without_anything_to_draw_say_so():
    runs = linear_gap(-0.45, 0.1, widths=WIDTHS[:2])
    runs = runs[~runs["noisy"]]
    gaps = {name: trend.gap_by_width(runs, column) for name, column in COLUMNS.items()}
    fig = trend_figures.gap_figure(gaps, runs, "grp")
    assert len(fig.axes) == 1 and fig.axes[0].texts[0].get_text() == trend_figures.NOTHING_TO_DRAW
    fig = trend_figures.equal_accuracy_width_figure(runs.iloc[:0], COLUMNS, "grp")
    assert len(fig.axes) == 1 and fig.axes[0].texts[0].get_text() == "no runs"
