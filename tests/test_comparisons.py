"""Noise against no noise, seed pair by seed pair: which runs are compared, how a pair is formed and scored, how
a comparison is decided, and the texts built on them (the headline, verdict.md, FINDINGS.md).

Groups are synthetic folders written to the input contract (`test_report.make_group`); every expected number
is worked by hand here.
"""

import numpy as np
import pandas as pd
import pytest

from htsgd.analysis import trend
from htsgd.analysis.comparisons import (BETTER, MIN_PAIRS, SWEEP_STEP, TOO_FEW, UNCLEAR, WORSE, comparison_frame,
                                        comparisons, control_runs, pair_frame, paired_outcome)
from htsgd.analysis.run_table import run_table, trend_runs
from htsgd.analysis.verdict import HEADLINE_LIMIT, headline
from htsgd.report.findings import FINDINGS_END, FINDINGS_START, README_ROOT, findings, readme_block, summary
from htsgd.report.inputs import read_sweep
from htsgd.report.write import write_report
from test_report import make_group, spec

IMAGE = 100 / 360  # one digits test image, in accuracy points
PARENT, LR_ARM = "stop at 99 %", "stop at 99 %, lr ∝ 1/width beyond 100"


def frames(group) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The group's pair frame and comparison frame, as the report computes them."""
    runs = run_table(group)
    sweep = read_sweep(group, runs["id"])
    return pair_frame(runs, sweep), comparison_frame(runs, sweep, 360)


def columns_only(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["compressor"] == "columns"]


# ---------------------------------------------------------------- the lr ∝ 1/width arm: each run once

def test_the_lr_arm_compares_its_copied_runs_once_with_seed_pairs(tmp_path):
    """Widths 50 and 100 at lr 0.05, width 200 at lr 0.025: an arm beyond 100 that shares the lr-0.05 runs at 50
    and 100. At every width seeds 1, 2, 3 remove 0.6, 0.1, 0.3 with noise and 0.5, 0.4, 0.6 without (unpruned
    accuracy 95 each): paired differences +0.1, −0.3, −0.3, median −0.3, while the sides' medians differ by
    0.3 − 0.5 = −0.2.

    Before #23 the trend pooled the baseline across arms: at widths up to the anchor the lr arm's no-noise side
    held the 3 parent-arm runs and their 3 copies, 6 runs with every seed twice, and the gap was the difference
    of the two sides' medians (−0.2 here) with each side resampled on its own."""
    specs = []
    for width, lr in ((50, 0.05), (100, 0.05), (200, 0.025)):
        specs += [spec(seed=s, width=width, lr=lr, within=w) for s, w in ((1, 0.5), (2, 0.4), (3, 0.6))]
        specs += [spec(noise=1, seed=s, width=width, lr=lr, within=w) for s, w in ((1, 0.6), (2, 0.1), (3, 0.3))]
    group = make_group(tmp_path, specs, norms_and_histories=False)
    runs = run_table(group)
    widths = trend_runs(runs)

    found = [c for c in comparisons(widths) if c.first["arm"] == LR_ARM]
    assert [c.first["width"] for c in found] == [50, 100, 200]
    for comparison in found:
        assert len(comparison.noisy) == 3 and set(comparison.noisy["arm"]) == {LR_ARM}
        assert len(comparison.baseline) == 3 and set(comparison.baseline["arm"]) == {LR_ARM}
    shared = runs[(runs["arm"] == PARENT) & ~runs["noisy"] & (runs["width"] == 50)]
    assert sorted(found[0].baseline["id"]) == sorted(shared["id"])  # the parent arm's runs, copied once

    pairs = columns_only(pair_frame(widths, read_sweep(group, runs["id"])))
    assert pairs.groupby(["arm", "width"]).size().to_dict() == {
        (PARENT, 50): 3, (PARENT, 100): 3, (LR_ARM, 50): 3, (LR_ARM, 100): 3, (LR_ARM, 200): 3}
    gaps, rows = trend.width_trend(pairs)
    lr_gaps = gaps[gaps["arm"] == LR_ARM]
    assert lr_gaps["pairs"].tolist() == [3, 3, 3]
    assert lr_gaps["gap"].tolist() == pytest.approx([-0.3] * 3)
    assert lr_gaps["noisy_median"].tolist() == pytest.approx([0.3] * 3)
    assert lr_gaps["noise_free_median"].tolist() == pytest.approx([0.5] * 3)
    # resampling the three pairs: a sample's median is +0.1 only when two of its three draws are (p = 7/27)
    assert lr_gaps["gap_low"].tolist() == pytest.approx([-0.3] * 3)
    assert lr_gaps["gap_high"].tolist() == pytest.approx([0.1] * 3)
    [row] = rows.itertuples()  # the parent arm has two widths: no trend
    assert (row.arm, row.pairs, row.widths) == (LR_ARM, 9, 3)


# ---------------------------------------------------------------- pairs

def test_a_noisy_run_is_compared_with_the_no_noise_run_of_its_own_seed(tmp_path):
    """Seeds 1, 2, 3 remove 0.5, 0.1, 0.2 with noise and 0.4, 0.0, 0.3 without: by seed noise removes more twice
    (+0.1, +0.1) and less once (−0.1), so it is better, though its median (0.2) is below no noise's (0.3)."""
    specs = ([spec(seed=s, within=w) for s, w in ((3, 0.3), (1, 0.4), (2, 0.0))]
             + [spec(noise=1, seed=s, within=w) for s, w in ((2, 0.1), (3, 0.2), (1, 0.5))])
    pairs, frame = frames(make_group(tmp_path, specs, norms_and_histories=False))
    pairs = columns_only(pairs)
    assert list(zip(pairs["seed"], pairs["own_noise"], pairs["own_none"])) == [(1, 0.5, 0.4), (2, 0.1, 0.0),
                                                                                  (3, 0.2, 0.3)]
    assert pairs["baseline_id"].tolist() == [f"noise0_mom0.0_width50_seed{s}" for s in (1, 2, 3)]
    [row] = columns_only(frame).itertuples()
    assert (row.own_1pt_noise, row.own_1pt_none, row.own_1pt_outcome) == (0.2, 0.3, BETTER)
    assert (row.within_1pt_noise, row.within_1pt_none, row.outcome) == (0.2, 0.3, BETTER)  # at 95, the reference
    assert row.pairs == 3 and row.noisy_ids == ";".join(f"noise1_sigma0.1_mom0.0_width50_seed{s}" for s in (1, 2, 3))


def test_a_run_that_does_not_count_drops_its_pair(tmp_path):
    """Noise: seed 4 diverged, seed 5 has no no-noise run. No noise: seed 2 hit its cap (analysed, not counted)
    with accuracy 80, which would pull the reference down if it counted. Pairs are left for seeds 1 and 3."""
    specs = ([spec(seed=s, before=b, status=st) for s, b, st in
              ((1, 94.0, "converged"), (2, 80.0, "cap"), (3, 95.0, "converged"), (4, 96.0, "converged"))]
             + [spec(noise=1, seed=s, status="diverged" if s == 4 else "converged") for s in (1, 2, 3, 4, 5)])
    pairs, frame = frames(make_group(tmp_path, specs, norms_and_histories=False))
    assert columns_only(pairs)["seed"].tolist() == [1, 3]
    [row] = columns_only(frame).itertuples()
    assert row.pairs == 2 and row.reference_acc == 95.0  # median of 94, 95, 96
    assert row.baseline_ids == "noise0_mom0.0_width50_seed1;noise0_mom0.0_width50_seed3"


def test_a_baseline_pooling_two_no_noise_configurations_takes_the_median_of_a_seeds_runs(tmp_path):
    """No noise at σ=1 (seeds 1, 2: accuracy 94, 95, removing 0.1, 0.4) and σ=0.5 (96, 97, removing 0.3, 0.6) is
    one baseline, reference 95.5. Seed 1's no-noise side is the median of its two runs: accuracy 95, 0.2 removed
    within its own accuracy, and within 1 pt of the reference (94.5) the median of 0 (94 is below it) and 0.3."""
    specs = ([spec(seed=s, before=b, within=w) for s, b, w in ((1, 94.0, 0.1), (2, 95.0, 0.4))]
             + [spec(seed=s, before=b, within=w, unused_sigma=0.5) for s, b, w in ((1, 96.0, 0.3), (2, 97.0, 0.6))]
             + [spec(noise=1, seed=s, before=96.0, within=0.3) for s in (1, 2)])
    pairs, frame = frames(make_group(tmp_path, specs, norms_and_histories=False))
    pairs = columns_only(pairs)
    assert [set(ids.split("+")) for ids in pairs["baseline_id"]] == [
        {f"noise0_mom0.0_width50_seed{s}", f"noise0_sigma0.5_mom0.0_width50_seed{s}"} for s in (1, 2)]
    assert pairs["unpruned_none"].tolist() == [95.0, 96.0]
    assert pairs["own_none"].tolist() == pytest.approx([0.2, 0.5])
    assert pairs["within_1_none"].tolist() == pytest.approx([0.15, 0.5])
    assert pairs["reference_acc"].tolist() == [95.5, 95.5]
    assert columns_only(frame)["pairs"].tolist() == [2]


# ---------------------------------------------------------------- the floor

def test_a_noisy_seed_already_below_the_line_scores_zero_and_is_the_floor(tmp_path):
    """No noise: 95 unpruned (the reference), 0.2 removable, every seed. Noise: 93.5, 93.8 and 96 unpruned, 0.4
    removable within 1 pt of its own accuracy. Seeds 1 and 2 are below 95 − 1 (and 95 − 0.5) before anything is
    removed: they score 0 within 1 pt, so noise loses the frontier (0, 0, 0.4 against 0.2) while it is the more
    robust to pruning (0.4 against 0.2); within 2 and 5 pt no seed is below the line."""
    specs = ([spec(seed=s, within=0.2) for s in (1, 2, 3)]
             + [spec(noise=1, seed=s, before=b, within=0.4) for s, b in ((1, 93.5), (2, 93.8), (3, 96.0))])
    pairs, frame = frames(make_group(tmp_path, specs, norms_and_histories=False))
    pairs = columns_only(pairs)
    assert pairs["below_1"].tolist() == [True, True, False] and pairs["below_0.5"].tolist() == [True, True, False]
    assert not pairs["below_2"].any() and not pairs["below_5"].any()
    assert pairs["within_1_noise"].tolist() == [0.0, 0.0, 0.4] and pairs["within_0.5_noise"].tolist() == [0, 0, 0.4]
    assert pairs["within_2_noise"].tolist() == [0.4] * 3
    assert pairs["own_noise"].tolist() == [0.4] * 3  # the floor leaves robustness alone
    row = columns_only(frame).iloc[0]
    assert row["floor_1pt"] == row["floor_0.5pt"] == pytest.approx(2 / 3)
    assert (row["floor_2pt"], row["floor_5pt"]) == (0.0, 0.0)
    assert (row["within_1pt_noise"], row["within_1pt_none"], row["outcome"]) == (0.0, 0.2, WORSE)
    assert (row["within_2pt_noise"], row["within_2pt_none"]) == (0.4, 0.2)
    assert (row["own_1pt_noise"], row["own_1pt_none"], row["own_1pt_outcome"]) == (0.4, 0.2, BETTER)
    assert row["unpruned_diff"] == pytest.approx(-1.2) and row["unpruned_outcome"] == WORSE  # −1.5, −1.2, +1


# ---------------------------------------------------------------- the paired rule

@pytest.mark.parametrize("differences, step, expected", [
    ([0.02, 0.02, 0.02], SWEEP_STEP, BETTER),  # the median exactly one step
    ([0.04, 0.02, -0.02], SWEEP_STEP, BETTER),  # median one step, two up and one down
    ([-0.02, -0.04, 0.02], SWEEP_STEP, WORSE),
    ([IMAGE, IMAGE, -5.0], IMAGE, BETTER),  # one test image
    ([0.01, 0.01, -0.5], SWEEP_STEP, UNCLEAR),  # two up, one down, but the median below one step
    ([0.25, 0.25, -1.0], IMAGE, UNCLEAR),  # less than an image
    ([0.3, 0.3, -0.1, -0.5], SWEEP_STEP, UNCLEAR),  # median 0.1, but as many pairs down as up
    ([0.0, 0.0, 0.0], SWEEP_STEP, UNCLEAR),  # ties
    ([0.1, 0.0, 0.0], SWEEP_STEP, UNCLEAR),  # one up, the rest tied: median 0
    ([0.5], SWEEP_STEP, TOO_FEW),
    ([], SWEEP_STEP, TOO_FEW),
    ([0.5, np.nan, np.inf], SWEEP_STEP, TOO_FEW),  # non-finite differences are no pairs
])
def test_paired_outcome_on_hand_cases(differences, step, expected):
    assert MIN_PAIRS == 2
    assert paired_outcome(differences, step) == expected


# ---------------------------------------------------------------- the texts: a group the size of digits_width

WIDTHS = (500, 1000, 2000, 4000, 8000, 16000, 32000)


def digits_width_like(root):
    """digits_width's grid: no noise and type 1 at σ 0.01 and 0.03, seeds 1–3, widths 500–32000 stopping at 99 %
    and in a fixed 400 steps, and lr ∝ 1/width beyond 8000 at widths 16000 and 32000: 32 comparisons. Values are
    drawn (fixed seed) so that every outcome occurs; σ=0.03 at 32000 in fixed steps keeps one seed, so one
    comparison is undecided."""
    rng = np.random.default_rng(0)
    specs = []
    for to_cap, lrs in ((False, dict.fromkeys(WIDTHS, 0.05)), (True, dict.fromkeys(WIDTHS, 0.05)),
                        (False, {16000: 0.025, 32000: 0.0125})):
        for width, lr in lrs.items():
            for noise, sigma in ((0, 0.1), (1, 0.01), (1, 0.03)):
                for seed in (1, 2, 3):
                    lost = to_cap and width == 32000 and sigma == 0.03 and seed > 1
                    specs.append(spec(noise=noise, sigma=sigma, seed=seed, width=width, lr=lr, to_cap=to_cap,
                                      status="diverged" if lost else "completed" if to_cap else "converged",
                                      before=float(rng.uniform(93, 97)), ratio=float(rng.uniform(0, 1)),
                                      **{key: int(rng.integers(0, 50)) * 0.02
                                         for key in ("within", "entries_within", "rank_within")}))
    return make_group(root, specs, name="digits_width", norms_and_histories=False)


def test_the_headline_and_verdict_of_a_group_like_digits_width_stay_short(tmp_path):
    group = digits_width_like(tmp_path)
    write_report(group)
    frame = pd.read_csv(group / "tables" / "comparisons.csv")
    assert len(frame) == 32 * 3
    text = headline(frame)
    for measure in ("unpruned_outcome", "own_1pt_outcome", "outcome", "mce_outcome"):
        assert TOO_FEW in set(frame[measure])
    assert {BETTER, WORSE, UNCLEAR} <= set(frame["outcome"])
    assert text.startswith("32 noisy configurations against no noise, 94 seed pairs, 1 undecided. ")
    assert len(text) <= HEADLINE_LIMIT == 500
    verdict = (group / "tables" / "verdict.md").read_text()
    assert f"**{text}**" in verdict
    assert len(verdict.encode()) <= 20_000


# ---------------------------------------------------------------- FINDINGS.md and the README block

def reported_group(results, name, noisy_shares, widths=(50,)):
    """A reported group: at each width no noise removes 0.10, 0.12, 0.14 (seeds 1–3), noise `noisy_shares`; 95
    unpruned each."""
    specs = [s for width in widths
             for s in ([spec(seed=s, width=width, within=w) for s, w in zip((1, 2, 3), (0.10, 0.12, 0.14))]
                       + [spec(noise=1, seed=s, width=width, within=w) for s, w in zip((1, 2, 3), noisy_shares)])]
    write_report(make_group(results, specs, name=name, norms_and_histories=False))


def test_findings_list_every_reported_group_with_links(tmp_path):
    reported_group(tmp_path, "first", (0.30, 0.40, 0.50), widths=(50, 100, 200))
    reported_group(tmp_path, "second", (0.02, 0.04, 0.06))
    make_group(tmp_path, [spec(seed=1)], name="unreported", norms_and_histories=False)  # no report written
    text = findings(tmp_path)
    assert text.startswith("# What the records show\n")
    assert "**digits** (comparisons counted per group" in text
    assert text.count("unreported") == 1 and "**Not in this summary**: unreported: a record" in text  # named, not counted
    assert ("**Frontier** (units removable within 1 point of no noise's accuracy): [first](first/tables/verdict.md) "
            "more in 3 of 3, median floor 0% (9 seed pairs); [second](second/tables/verdict.md) fewer in 1 of 1, median "
            "floor 0% (3 seed pairs).") in text
    # a trend links to its figure; a group with one width has neither, and links to its verdict
    assert ("[first](first/figures/equal_accuracy_gap_vs_width.png) shows no trend 3 of 3 (9 seed pairs); "
            "[second](second/tables/verdict.md) no trend stated (fewer than 3 widths) (3 seed pairs).") in text
    assert "A comparison rests on 3 seed pairs. That every pair points one way has, under no effect, probability 0.25 with 3 pairs" in text and "One digits test image is 0.28 points" in text
    assert "## Glossary" in text and "- **floor**:" in text

    block = readme_block(text)
    assert block.strip() == summary(tmp_path).strip() and FINDINGS_START not in block and "## Glossary" not in block
    readme = f"# htsgd\n\n{FINDINGS_START}\n{summary(tmp_path, README_ROOT)}{FINDINGS_END}\n\n## Install\n"
    assert "[first](results/first/tables/verdict.md)" in readme_block(readme)
    assert "Install" not in readme_block(readme)
    assert readme_block("# htsgd\n\nno findings yet\n") == ""


def test_findings_without_a_reported_group_say_so(tmp_path):
    assert "No group has been reported yet" in findings(tmp_path)


# ---------------------------------------------------------------- the Gaussian control

def test_the_heavy_tail_is_compared_with_its_gaussian_twin_seed_by_seed(tmp_path):
    """Type 1 at α 1.75 and at α 2 (same σ, width 50), and σ 0.2 at α 1.75 alone: only the setting with a twin is
    controlled. Pruning ratios at mce: heavy 0.5, 0.6, 0.4 against Gaussian 0.3, 0.5, 0.45 by seed: paired
    differences +0.2, +0.1, −0.05, median +0.1, two of three up: the heavy tail prunes more. Unpruned accuracy
    95 against 94, more than one test image: better. The control's reference accuracy is the Gaussian side's."""
    specs = [spec(seed=s) for s in (1, 2, 3)]
    specs += [spec(noise=1, seed=s, ratio=r) for s, r in ((1, 0.5), (2, 0.6), (3, 0.4))]
    specs += [spec(noise=1, seed=s, ratio=r, alpha=2.0, before=94.0) for s, r in ((1, 0.3), (2, 0.5), (3, 0.45))]
    specs += [spec(noise=1, seed=s, sigma=0.2) for s in (1, 2, 3)]
    group = make_group(tmp_path, specs, norms_and_histories=False)
    runs = run_table(group)
    controlled = control_runs(runs)
    assert sorted(set(controlled["iterate_noise_alpha"])) == [1.75, 2.0]
    assert set(controlled["iterate_noise_scale"]) == {0.1} and not (controlled["iterate_noise"] == 0).any()
    frame = columns_only(comparison_frame(controlled, read_sweep(group, runs["id"]), 360))
    [row] = frame.itertuples()
    assert row.pairs == 3 and row.reference_acc == pytest.approx(94.0)
    assert row.noisy_ids.split(";") == [f"noise1_sigma0.1_mom0.0_width50_seed{s}" for s in (1, 2, 3)]
    assert row.baseline_ids.split(";") == [f"noise1_sigma0.1_alpha2_mom0.0_width50_seed{s}" for s in (1, 2, 3)]
    assert (row.mce_noise, row.mce_none, row.mce_outcome) == (pytest.approx(0.5), pytest.approx(0.45), BETTER)
    assert (row.unpruned_diff, row.unpruned_outcome) == (pytest.approx(1.0), BETTER)
    write_report(group)
    text = (group / "tables" / "verdict.md").read_text()
    assert "## The heavy tail against its Gaussian control" in text and (group / "tables" / "gaussian_control.csv").is_file()


def test_a_group_without_an_alpha_2_twin_has_no_control(tmp_path):
    specs = [spec(seed=s) for s in (1, 2, 3)] + [spec(noise=1, seed=s) for s in (1, 2, 3)]
    group = make_group(tmp_path, specs, norms_and_histories=False)
    assert control_runs(run_table(group)).empty
    write_report(group)
    assert "Gaussian control" not in (group / "tables" / "verdict.md").read_text()
    assert not (group / "tables" / "gaussian_control.csv").exists()
