"""The group report on tiny synthetic group folders written to the input contract.

Every expected number is worked by hand in the test (never computed with the code under test);
figures are checked through the Figure objects their functions return, not only as PNGs.
"""

import json
import math
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from htsgd.analysis.comparisons import BETTER, PAIRED_RULE, TOO_FEW, comparisons
from htsgd.analysis.group_analysis import noiseless_reference
from htsgd.analysis.run_table import lr_anchor, noise_label, run_table, trend_runs
from htsgd.analysis.runs import Run
from htsgd.core.config import TrainConfig
from htsgd.core.data import TEST_SET_SIZE
from htsgd.record.names import ANALYSED
from htsgd.report import figures
from htsgd.report.formatting import markdown_table
from htsgd.report.inputs import provenance_markdown, read_column_norms, read_histories, read_sweep
from htsgd.report.markdown import summary_table
from htsgd.report.write import write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MCE_COLUMNS = ["exp_key", "model", "dataset", "lr", "batch_size", "width", "depth", "seed", "iterations",
               "convergence_accuracy", "it_noise", "it_noise_alpha", "it_noise_scale", "criterion_ratio",
               "pruning_criterion", "train_loss", "train_acc", "test_loss", "test_acc", "pruning_ratio", "status",
               "error", "steps", "columns_within_1pt", "columns_within_1pt_of_noiseless", "entries_within_1pt",
               "entries_within_1pt_of_noiseless", "rank_within_1pt", "rank_within_1pt_of_noiseless", "hill_alpha",
               "block_alpha"]
FRACTIONS = np.round(np.arange(0, 51) * 0.02, 2)
SWEEP_DROP = 20.0  # points lost by a sweep beyond a run's removable share: past every tolerance


def spec(noise=0, seed=1, width=50, status="converged", mom=0.0, sigma=0.1, before=95.0, pruned=94.0, ratio=0.2,
         within=0.3, within_noiseless=0.3, hill=1.5, block=1.6, steps=100, max_loss=1.0, analysis=None, error="",
         unused_sigma=1.0, entries_noiseless=0.6, rank_noiseless=0.1, lr=0.05, entries_within=0.7, rank_within=0.2,
         to_cap=False, alpha=1.75):
    """One synthetic run: its flags, training outcome and analysis metrics (`analysis`: the analysis's own
    status when it differs from the run's, e.g. 'error'; `unused_sigma`: a no-noise run's σ, which it ignores;
    `to_cap`: trained a fixed 400 steps). Its sweep keeps the unpruned accuracy `before` up to the share
    `within` (columns), `entries_within`, `rank_within` (on the sweep's 0.02 grid), then loses SWEEP_DROP
    points: so that share is removable within any tolerance of a reference at most `before` + tolerance,
    and nothing is below it."""
    return dict(locals())


def scale(s):
    return s["sigma"] if s["noise"] else s["unused_sigma"]


def run_id(s):
    sigma = "" if s["noise"] == 0 and scale(s) == 1.0 else f"_sigma{scale(s)}"
    lr = "" if s["lr"] == 0.05 else f"_lr{s['lr']}"
    cap = "_cap400" if s["to_cap"] else ""
    alpha = "" if s["alpha"] == 1.75 else f"_alpha{s['alpha']:g}"
    return f"noise{s['noise']}{sigma}{alpha}_mom{s['mom']}_width{s['width']}{lr}{cap}_seed{s['seed']}"


def config(s):
    return TrainConfig(iterate_noise=s["noise"], iterate_noise_scale=scale(s),
                       iterate_noise_alpha=s["alpha"], dataset="digits", width=s["width"], lr=s["lr"],
                       batch_size_train=256, mom=s["mom"], seed=s["seed"], eval_freq=10,
                       convergence_accuracy=99.0, iterations=400 if s["to_cap"] else 20000,
                       train_to_cap=s["to_cap"])


def make_group(root, specs, name="grp", provenance=True, norms_and_histories=True):
    """A group folder exactly as the driver and the analysis write it (see htsgd.report's docstring); without
    `norms_and_histories`, neither the column norms nor any run's history (their figures are skipped)."""
    group = root / name
    (group / "summary").mkdir(parents=True)
    runs, mce, sweep, norms = [], [], [], []
    for s in specs:
        key, c = run_id(s), config(s)
        status = s["analysis"] or s["status"]
        runs.append({"id": key, **asdict(c), "status": s["status"], "steps": s["steps"], "wall_time": 1.0,
                     "train_acc": 99.0, "test_acc": s["before"], "max_train_loss_ratio": s["max_loss"],
                     "error": "Traceback: boom" if s["status"] == "failed" else ""})
        analysed = status in ANALYSED
        common = {"exp_key": key, "model": "fcn", "dataset": "digits", "lr": s["lr"], "batch_size": 256,
                  "width": s["width"], "depth": 2, "seed": s["seed"], "iterations": c.iterations,
                  "convergence_accuracy": 99.0,
                  "it_noise": s["noise"], "it_noise_alpha": 0.0 if s["noise"] == 0 else s["alpha"],
                  "it_noise_scale": 0.0 if s["noise"] == 0 else s["sigma"], "pruning_criterion": "mce",
                  "status": status, "error": s["error"], "steps": s["steps"]}
        shares = {"columns": s["within"], "entries": s["entries_within"], "rank": s["rank_within"]}
        metrics = {"train_loss": 0.1, "train_acc": 99.0, "test_loss": 0.2, "columns_within_1pt": s["within"],
                   "columns_within_1pt_of_noiseless": s["within_noiseless"], "entries_within_1pt": s["entries_within"],
                   "entries_within_1pt_of_noiseless": s["entries_noiseless"], "rank_within_1pt": s["rank_within"],
                   "rank_within_1pt_of_noiseless": s["rank_noiseless"], "hill_alpha": s["hill"],
                   "block_alpha": s["block"]} if analysed else {}
        for ratio, acc, pruning in ((0.0, s["before"], 0.0), (0.1, s["pruned"], s["ratio"])):
            mce.append({**common, "criterion_ratio": ratio, **metrics,
                        **({"test_acc": acc, "pruning_ratio": pruning} if analysed else {})})
        if analysed:
            sweep += [{"exp_key": key, "compressor": compressor, "fraction": f, "removed": f,
                       "test_acc": s["before"] - (SWEEP_DROP if f > share + 1e-9 else 0.0)}
                      for compressor, share in shares.items() for f in FRACTIONS]
            if norms_and_histories:
                norms += [{"exp_key": key, "norm": n} for n in np.linspace(1.0, 3.0, s["width"])]
        if s["status"] != "pending" and norms_and_histories:
            steps = np.arange(0, s["steps"] + 1, 10)
            history = pd.DataFrame({"step": steps, "train_loss": 2.0 / (1 + steps), "train_acc": 99.0,
                                    "test_loss": 0.3, "test_acc": s["before"]})
            (group / key).mkdir()
            history.to_csv(group / key / "history.csv", index=False)
    pd.DataFrame(runs).to_csv(group / "runs.csv", index=False)
    pd.DataFrame(mce, columns=MCE_COLUMNS).to_csv(group / "summary" / "results_filter_mce.csv", index=False)
    pd.DataFrame(sweep).to_csv(group / "summary" / "sweep_filter.csv", index=False)
    if norms_and_histories:
        pd.DataFrame(norms).to_csv(group / "summary" / "column_norms.csv.gz", index=False)
    if provenance:
        (group / "provenance.json").write_text(json.dumps({"htsgd": "0.1", "git_commit": "abc123", "dirty": False,
                                                           "versions": {"torch": "2.14"}, "device": "cpu"}))
    return group


def markdown_rows(source):
    """The data rows of the markdown table in `source` (a path or the text), as dicts keyed by the header."""
    text = source.read_text() if hasattr(source, "read_text") else source
    lines = []
    for line in text.splitlines():  # the first table only
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    split = lambda line: [cell.strip() for cell in line.strip("|").split(" | ")]
    return [dict(zip(split(lines[0]), split(line))) for line in lines[2:]]


def section(text: str, heading: str) -> str:
    """`text` from the line `heading` on (its first table is the section's)."""
    return text[text.index(heading):]


# ---------------------------------------------------------------- aggregation

def test_digits_test_set_size_is_the_data_loaders(digits):
    assert TEST_SET_SIZE["digits"] == len(digits.test_y) == 360


def test_configurations_differing_only_in_momentum_are_two_rows(tmp_path):
    group = make_group(tmp_path, [spec(mom=0.0, seed=1, ratio=0.10), spec(mom=0.0, seed=2, ratio=0.20),
                                  spec(mom=0.9, seed=1, ratio=0.50), spec(mom=0.9, seed=2, ratio=0.70)])
    summary = summary_table(run_table(group))
    assert len(summary) == 2
    assert summary["mom"].tolist() == [0.0, 0.9]
    assert summary["seeds_counted"].tolist() == ["2/2 (converged 2)", "2/2 (converged 2)"]
    assert summary["pruning_ratio_median"].tolist() == pytest.approx([0.15, 0.60])
    assert summary["setting"].tolist() == ["no noise, mom=0", "no noise, mom=0.9"]


def test_diverged_and_capped_seeds_are_left_out_of_the_statistics_and_named(tmp_path):
    group = make_group(tmp_path, [spec(seed=1, ratio=0.2, before=90.0), spec(seed=2, ratio=0.4, before=94.0),
                                  spec(seed=3, ratio=0.9, before=99.0, status="cap"),
                                  spec(seed=4, status="diverged")])
    row = summary_table(run_table(group)).iloc[0]
    assert row["seeds_counted"] == "2/4 (converged 2)"
    assert row["not_counted"] == "seed 3: cap; seed 4: diverged"
    assert row["pruning_ratio_median"] == pytest.approx(0.3)  # (0.2 + 0.4) / 2; with the cap seed it would be 0.4
    assert row["pruning_ratio_max"] == pytest.approx(0.4)
    assert row["test_acc_before_mean"] == pytest.approx(92.0)
    assert row["test_acc_before_std"] == pytest.approx(math.sqrt(8))  # sample std of 90, 94
    write_report(group)
    [shown] = markdown_rows(group / "tables" / "pruning_summary.md")
    assert shown["seeds counted"] == "2/4 (converged 2)" and shown["not counted"] == "seed 3: cap; seed 4: diverged"
    assert shown["pruning ratio at mce 0.1"] == "0.300 (0.200–0.400, n=2); 0.300 ± 0.141"


def test_a_run_that_completed_its_fixed_steps_counts(tmp_path):
    group = make_group(tmp_path, [spec(seed=1, to_cap=True, status="completed", ratio=0.2),
                                  spec(seed=2, to_cap=True, status="completed", ratio=0.4)])
    runs = run_table(group)
    assert runs["counted"].tolist() == [True, True] and runs["arm"].unique().tolist() == ["fixed 400 steps"]
    row = summary_table(runs).iloc[0]
    assert row["seeds_counted"] == "2/2 (completed 2)" and row["pruning_ratio_median"] == pytest.approx(0.3)


def test_a_configuration_without_converged_seed_keeps_its_row(tmp_path):
    group = make_group(tmp_path, [spec(seed=1), spec(noise=1, seed=1, status="diverged"),
                                  spec(noise=1, seed=2, status="failed")])
    summary = summary_table(run_table(group))
    noisy = summary[summary["iterate_noise"] == 1].iloc[0]
    assert noisy["seeds_counted"] == "0/2" and noisy["not_counted"] == "seed 1: diverged; seed 2: failed"
    assert math.isnan(noisy["pruning_ratio_median"])
    write_report(group)
    shown = markdown_rows(group / "tables" / "pruning_summary.md")[1]
    assert shown["setting"] == "type 1, α=1.75, σ=0.1" and shown["pruned test acc at mce 0.1 (%)"] == "–"
    per_seed = markdown_rows(group / "tables" / "pruning_per_seed.md")
    assert [r["status"] for r in per_seed] == ["converged", "diverged", "failed"]
    assert per_seed[2]["error"] == "Traceback: boom"


def test_noise_free_rows_join_their_runs_csv_configuration(tmp_path):
    group = make_group(tmp_path, [spec(seed=1, ratio=0.25), spec(noise=1, seed=1, ratio=0.6)])
    mce = pd.read_csv(group / "summary" / "results_filter_mce.csv")
    assert mce.loc[mce["it_noise"] == 0, ["it_noise_alpha", "it_noise_scale"]].eq(0.0).all().all()
    runs = run_table(group).set_index("id")
    noise_free = runs.loc["noise0_mom0.0_width50_seed1"]
    assert (noise_free["iterate_noise_alpha"], noise_free["iterate_noise_scale"]) == (1.75, 1.0)  # runs.csv's
    assert noise_free["pruning_ratio"] == 0.25 and noise_free["status"] == "converged"
    assert runs.loc["noise1_sigma0.1_mom0.0_width50_seed1", "pruning_ratio"] == 0.6


def test_a_run_whose_analysis_failed_is_named_with_status_error(tmp_path):
    group = make_group(tmp_path, [spec(seed=1), spec(seed=2, analysis="error", error="CUDA out of memory")])
    row = summary_table(run_table(group)).iloc[0]
    assert row["seeds_counted"] == "1/2 (converged 1)" and row["not_counted"] == "seed 2: error"
    write_report(group)
    per_seed = markdown_rows(group / "tables" / "pruning_per_seed.md")
    assert per_seed[1]["status"] == "error" and per_seed[1]["error"] == "CUDA out of memory"
    assert per_seed[1]["pruning ratio at mce 0.1"] == "–"


def test_runs_no_longer_in_runs_csv_are_left_out(tmp_path):
    group = make_group(tmp_path, [spec(seed=1), spec(seed=2)])
    runs = pd.read_csv(group / "runs.csv")
    runs[runs["seed"] == 1].to_csv(group / "runs.csv", index=False)  # seed 2 dropped from the grid
    assert run_table(group)["seed"].tolist() == [1]


def test_tables_state_the_test_set_size_and_what_one_image_is_worth(tmp_path):
    group = make_group(tmp_path, [spec(seed=1)])
    write_report(group)
    for name in ("pruning_summary.md", "pruning_per_seed.md", "verdict.md"):
        text = (group / "tables" / name).read_text()
        assert "Test set of digits: 360 images; one image is 0.28 points of accuracy." in text
        assert "lr 0.05" in text and "mom 0" in text  # the shared flags, stated once


def test_per_seed_table_has_stability_and_equal_accuracy_columns(tmp_path):
    group = make_group(tmp_path, [spec(seed=1, steps=1150, max_loss=1834.5, before=96.0, pruned=94.5,
                                       within=0.42, within_noiseless=0.38, hill=1.37, block=1.81)])
    write_report(group)
    [row] = markdown_rows(group / "tables" / "pruning_per_seed.md")
    assert row["steps"] == "1150" and row["max train loss / initial"] == "1,834.5"
    assert row["test acc before pruning (%)"] == "96.0" and row["pruned test acc at mce 0.1 (%)"] == "94.5"
    assert row["accuracy change at mce 0.1 (points)"] == "-1.5"
    assert row["share of units removable within 1 pt of own acc"] == "0.42"
    assert row["share of units removable within 1 pt of no noise's median"] == "0.38"
    assert (row["Hill α̂"], row["block α̂"]) == ("1.37", "1.81")


# ---------------------------------------------------------------- verdict

def verdict_group(tmp_path, noisy_settings):
    """No noise at width 50 (shares removable within 1 pt 0.10, 0.12, 0.14 for seeds 1, 2, 3; mce ratio 0.1;
    unpruned accuracy 95 each, the reference) and noisy settings {sigma: (shares removable, mce ratios)}, seeds
    1, 2, 3, unpruned accuracy 95: every seed's share is the same within its own accuracy and within no noise's."""
    specs = [spec(seed=s, within=w, ratio=0.1) for s, w in zip((1, 2, 3), (0.10, 0.12, 0.14))]
    for sigma, (within, ratios) in noisy_settings.items():
        specs += [spec(noise=1, sigma=sigma, seed=s, within=w, ratio=r) for s, w, r in zip((1, 2, 3), within, ratios)]
    group = make_group(tmp_path, specs)
    write_report(group)
    return (group / "tables" / "verdict.md").read_text()


def frontier_rows(text: str) -> list[dict]:
    return markdown_rows(section(text, "## At equal accuracy: the frontier"))


def test_verdict_says_noise_is_better(tmp_path):
    text = verdict_group(tmp_path, {0.1: ((0.30, 0.40, 0.50), (0.5, 0.6, 0.7))})
    assert text.startswith("# Verdict: grp (digits)\n")
    assert ("**1 noisy configuration against no noise, 3 seed pairs. Unpruned accuracy with noise: not clearly "
            "different in 1 of 1. Units removable within 1 pt of the run's own accuracy: more in 1 of 1. Within 1 pt "
            "of no noise's accuracy: more in 1 of 1; median floor 0% of noisy seeds. Pruning ratio at mce 0.1: "
            "higher in 1 of 1.**") in text
    [cost] = markdown_rows(text)  # cost and the paper's criterion first
    assert cost == {"setting": "type 1, α=1.75, σ=0.1", "width": "50", "pairs": "3", "no noise's acc (%)": "95.0",
                    "unpruned: noise − no noise (pts)": "+0.0", "cost": "≈",
                    "pruning ratio at mce 0.1": "0.60 / 0.10 ▲"}
    [frontier] = frontier_rows(text)  # pairs (0.30, 0.10), (0.40, 0.12), (0.50, 0.14): medians 0.40 and 0.12
    assert frontier["floor"] == "0%" and frontier["column pruning"] == "0.40 / 0.12 ▲"
    assert frontier["entrywise pruning"] == "0.70 / 0.70 ≈" and frontier["singular-value truncation"] == "0.20 / 0.20 ≈"
    assert PAIRED_RULE in text


def test_verdict_says_noise_is_worse_beside_its_gain_in_pruning_ratio(tmp_path):
    """Noise prunes more at mce 0.1 but removes less at equal accuracy: both are said, neither hides the other."""
    text = verdict_group(tmp_path, {0.1: ((0.02, 0.04, 0.06), (0.5, 0.6, 0.7))})
    assert ("Within 1 pt of no noise's accuracy: fewer in 1 of 1; median floor 0% of noisy seeds. Pruning ratio at "
            "mce 0.1: higher in 1 of 1.**") in text
    assert frontier_rows(text)[0]["column pruning"] == "0.04 / 0.12 ▼"


def test_verdict_says_mixed(tmp_path):
    text = verdict_group(tmp_path, {0.1: ((0.30, 0.40, 0.50), (0.5, 0.6, 0.7)),
                                    1.0: ((0.02, 0.04, 0.06), (0.05, 0.06, 0.07))})
    assert "2 noisy configurations against no noise, 6 seed pairs." in text
    assert "Within 1 pt of no noise's accuracy: fewer in 1, more in 1 of 2;" in text
    assert "Pruning ratio at mce 0.1: lower in 1, higher in 1 of 2." in text  # σ=1 prunes less: 0.06 against 0.1
    assert [r["column pruning"][-1] for r in frontier_rows(text)] == ["▲", "▼"]


def test_verdict_counts_most_comparisons_first(tmp_path):
    """σ 0.1 and 0.5 remove less than no noise at equal accuracy, σ 1 more: fewer in 2 of 3 is said first."""
    text = verdict_group(tmp_path, {0.1: ((0.02, 0.04, 0.06), (0.5, 0.6, 0.7)),
                                    0.5: ((0.00, 0.02, 0.04), (0.5, 0.6, 0.7)),
                                    1.0: ((0.80, 0.84, 0.90), (0.5, 0.6, 0.7))})
    assert "Within 1 pt of no noise's accuracy: fewer in 2, more in 1 of 3;" in text


def test_one_baseline_pools_no_noise_runs_that_differ_only_in_an_unused_noise_flag(tmp_path):
    """No noise at σ=1 (seeds 1, 2: accuracies 90, 94) and at σ=0.5 (seeds 3, 4: 95, 97): σ is unused without
    noise, so they are one baseline of 4 seeds, reference median 94.5. The verdict makes one comparison against
    it (not one per σ), the analysis' reference for the noisy run is the same 94.5, and the figure draws one
    threshold at 93.5. Noise (94 each, above the line) removes 0.4 within 1 pt of it; no noise's seed 1 (90) is
    below it and scores 0, seeds 2 and 3 remove 0.12 and 0.14: pairs 0.4−0, 0.4−0.12, 0.4−0.14."""
    specs = ([spec(seed=s, before=b, within=w) for s, b, w in ((1, 90.0, 0.10), (2, 94.0, 0.12))]
             + [spec(seed=s, before=b, within=w, unused_sigma=0.5) for s, b, w in ((3, 95.0, 0.14), (4, 97.0, 0.16))]
             + [spec(noise=1, seed=s, before=94.0, within=0.4) for s in (1, 2, 3)])
    group = make_group(tmp_path, specs)
    runs = run_table(group)
    [comparison] = comparisons(runs)
    assert sorted(comparison.baseline["seed"]) == [1, 2, 3, 4]
    assert comparison.reference == 94.5
    assert [run.seed for run, _ in comparison.pairs()] == [1, 2, 3]
    write_report(group)
    text = (group / "tables" / "verdict.md").read_text()
    [cost] = markdown_rows(text)
    assert cost["no noise's acc (%)"] == "94.5" and cost["pairs"] == "3"
    assert cost["unpruned: noise − no noise (pts)"] == "+0.0"  # 94 − 90, 94 − 94, 94 − 95: median 0
    [frontier] = frontier_rows(text)
    assert frontier["column pruning"] == "0.40 / 0.12 ▲" and frontier["floor"] == "0%"

    analysed = [Run(run_id(s), group / run_id(s), asdict(config(s)), s["status"]) for s in specs]
    unpruned = {run_id(s): s["before"] for s in specs}
    assert noiseless_reference(analysed[-1], analysed, unpruned) == 94.5

    fig = figures.accuracy_vs_pruned_figure(runs, read_sweep(group, runs["id"]), "grp (digits)")
    [threshold] = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert threshold.get_ydata()[0] == 93.5
    assert threshold.get_label() == ("1 pt below no noise, iterate_noise_scale=0.5 + no noise, "
                                     "iterate_noise_scale=1's median")


def test_too_few_seed_pairs_are_undecided(tmp_path):
    """σ=0.1: three counted seeds, better. σ=1: one counted seed of three: one pair, too few to decide."""
    specs = [spec(seed=s, within=w, ratio=0.1) for s, w in zip((1, 2, 3), (0.10, 0.12, 0.14))]
    specs += [spec(noise=1, sigma=0.1, seed=s, within=0.4, ratio=0.5) for s in (1, 2, 3)]
    specs += [spec(noise=1, sigma=1.0, seed=s, within=0.02, ratio=0.9,
                   status="converged" if s == 1 else "diverged") for s in (1, 2, 3)]
    group = make_group(tmp_path, specs)
    write_report(group)
    frame = pd.read_csv(group / "tables" / "comparisons.csv")
    columns = frame[frame["compressor"] == "columns"]
    assert columns["pairs"].tolist() == [3, 1]
    assert columns["outcome"].tolist() == [BETTER, TOO_FEW] and columns["mce_outcome"].tolist() == [BETTER, TOO_FEW]
    text = (group / "tables" / "verdict.md").read_text()
    assert "2 noisy configurations against no noise, 4 seed pairs, 1 undecided." in text  # said once
    assert "Within 1 pt of no noise's accuracy: more in 1 of 1;" in text
    assert [r["column pruning"] for r in frontier_rows(text)] == ["0.40 / 0.12 ▲", TOO_FEW]


def test_verdict_without_a_no_noise_configuration_says_so(tmp_path):
    text = verdict_group(tmp_path, {})  # no noisy settings at all
    assert "**No noisy configuration in this group: nothing to compare.**" in text
    group = make_group(tmp_path / "other", [spec(mom=0.0, seed=s) for s in (1, 2)]
                       + [spec(noise=1, mom=0.9, seed=s) for s in (1, 2)])  # no noise only at another momentum
    write_report(group)
    text = (group / "tables" / "verdict.md").read_text()
    assert ("1 noisy configuration against no noise, 0 seed pairs, 1 undecided. Unpruned accuracy with noise: "
            "undecided everywhere.") in text
    assert [r["cost"] for r in markdown_rows(text)] == ["no baseline"]


# ---------------------------------------------------------------- figures

@pytest.fixture
def figure_group(tmp_path):
    """Widths 30 and 50, no noise and type 1, three seeds each. At width 50: no noise's seed 3 hit the
    cap (drawn, not counted) and type 1's seed 3 diverged (no analysis). Type 1 at width 30 has an
    outlier: pruning ratios 0.50, 0.52, 0.95."""
    specs = []
    for width in (30, 50):
        for seed in (1, 2, 3):
            specs.append(spec(width=width, seed=seed, before=95.0 + seed, pruned=94.0 + seed, ratio=0.1,
                              status="cap" if (width, seed) == (50, 3) else "converged", hill=1.9))
            specs.append(spec(noise=1, width=width, seed=seed, before=92.0, pruned=90.0 - seed,
                              ratio=(0.50, 0.52, 0.95)[seed - 1] if width == 30 else 0.6,
                              hill=(1.4, 1.5, 1.6)[seed - 1],
                              status="diverged" if (width, seed) == (50, 3) else "converged"))
    return make_group(tmp_path, specs)


def inputs(group):
    runs = run_table(group)
    return runs, read_sweep(group, runs["id"]), read_column_norms(group, runs["id"])


def solid_and_dotted(ax):
    styles = [line.get_linestyle() for line in ax.lines]
    return styles.count("-"), styles.count(":")


def test_accuracy_vs_pruned_fraction_figure(figure_group):
    runs, sweep, _ = inputs(figure_group)
    fig = figures.accuracy_vs_pruned_figure(runs, sweep, "grp (digits)")
    assert fig.get_suptitle().startswith("grp (digits): test accuracy against the fraction pruned")
    ax30, ax50 = fig.axes
    assert (ax30.get_title(), ax50.get_title()) == ("width 30", "width 50")
    assert ax30.get_ylabel() == "test accuracy (%)"
    assert ax30.get_xlabel() == "fraction of columns pruned (smallest norm first)"
    # width 30: 3 + 3 thin seeds, 2 medians, 1 threshold (no noise); width 50: 2 + 3 thin (the cap seed
    # dotted, the diverged one has no sweep), 2 medians, 1 threshold
    assert len(ax30.lines) == 9 and solid_and_dotted(ax30) == (8, 0)
    assert len(ax50.lines) == 8 and solid_and_dotted(ax50) == (6, 1)
    assert len(ax30.collections) == 2 and len(ax50.collections) == 2  # mce points, one scatter per setting
    assert ax30.collections[1].get_offsets().tolist() == [[0.50, 89.0], [0.52, 88.0], [0.95, 87.0]]
    threshold = [line for line in ax50.lines if line.get_linestyle() == "--"][0]
    assert threshold.get_ydata()[0] == pytest.approx(95.5)  # median of 96, 97 (seed 3 capped) minus 1
    # lowest mce point 87.0 (type 1, seed 3, width 30) minus 3; highest accuracy 98 (seed 3, no noise) plus 1.5
    assert ax30.get_ylim() == pytest.approx((84.0, 99.5))
    labels = [t.get_text() for t in ax50.get_legend().get_texts()]
    assert labels == ["no noise: median of 2 counted", "type 1, α=1.75, σ=0.1: median of 2 counted",
                      "1 pt below no noise's median"]


def test_training_stability_figure(figure_group):
    runs = run_table(figure_group)
    histories = read_histories(figure_group, runs)
    fig = figures.training_stability_figure(runs, histories, "grp (digits)")
    assert fig.get_suptitle() == "grp (digits): training stability at width 50, every seed"
    assert [ax.get_title() for ax in fig.axes] == ["no noise", "type 1, α=1.75, σ=0.1"]
    for ax in fig.axes:
        assert ax.get_yscale() == "log" and ax.get_xlabel() == "step" and len(ax.lines) == 3
    assert fig.axes[0].get_ylabel() == "train loss (full train set)"
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels[2] == "seed 3: diverged, 100 steps, max/initial 1.0"
    assert list(fig.axes[0].lines[0].get_xdata()) == list(range(0, 101, 10))


def test_column_norms_figure(figure_group):
    runs, _, norms = inputs(figure_group)
    fig = figures.column_norms_figure(runs, norms, "grp (digits)")
    assert "grp (digits)" in fig.get_suptitle()
    ax30, ax50 = fig.axes
    assert ax30.get_xscale() == ax30.get_yscale() == "log"
    assert ax30.get_xlabel() == "column norm / the run's median column norm"
    assert ax30.get_ylabel() == "fraction of columns with norm ≥ x"
    assert len(ax30.lines) == 3 + 3 + 1 and len(ax50.lines) == 3 + 2 + 1  # seeds, and the reference slope
    labels = [t.get_text() for t in ax30.get_legend().get_texts()]
    assert labels == ["no noise: Hill α̂ 1.90 (1.90–1.90, n=3)",
                      "type 1, α=1.75, σ=0.1: Hill α̂ 1.50 (1.40–1.60, n=3)", "slope −2 (tail index 2)"]
    # norms 1..3 evenly spaced (odd count 31 at width 30): median 2, largest relative norm 1.5
    first = ax30.lines[0]
    assert first.get_xdata()[0] == pytest.approx(0.5) and first.get_xdata()[-1] == pytest.approx(1.5)
    assert first.get_ydata()[0] == 1.0 and first.get_ydata()[-1] == pytest.approx(1 / 30)
    reference = ax30.lines[-1]
    assert list(reference.get_xdata()) == pytest.approx([1.0, 1.5])
    assert list(reference.get_ydata()) == pytest.approx([0.5, 0.5 / 1.5 ** 2])


def test_width_figure(figure_group):
    runs = run_table(figure_group)
    fig = figures.width_figure(runs, "grp (digits)")
    assert "grp (digits)" in fig.get_suptitle()
    ratio_ax, acc_ax = fig.axes
    assert ratio_ax.get_ylabel() == "pruning ratio at mce 0.1"
    assert acc_ax.get_ylabel() == "pruned test accuracy at mce 0.1 (%)"
    assert ratio_ax.get_xlabel() == "width (hidden units)" and ratio_ax.get_xscale() == "log"
    assert [t.get_text() for t in ratio_ax.get_xticklabels()] == ["30", "50"]
    assert ratio_ax.get_ylim() == (-0.02, 1.02)
    for ax in fig.axes:
        # no noise: converged points, hollow cap point, median; type 1: converged points, median
        assert len(ax.collections) == 3 and len(ax.lines) == 2
        assert sum(len(c.get_offsets()) for c in ax.collections) == 11  # 12 runs less the diverged one
    assert [t.get_text() for t in ratio_ax.texts] == ["seed 3"]  # 0.95 against 0.50 and 0.52
    assert ratio_ax.texts[0].xy[1] == 0.95
    assert len(acc_ax.texts) == 0  # pruned accuracies 89, 88, 87: one point apart
    median = ratio_ax.lines[1]  # type 1: median of 0.50, 0.52, 0.95 at width 30; of 0.6, 0.6 at 50
    assert list(median.get_ydata()) == pytest.approx([0.52, 0.6])


@pytest.mark.parametrize("values, floor, expected", [
    ([0.50, 0.52, 0.95], 0.1, [False, False, True]),  # gap 0.43 > 3 x 0.02 and > 0.1
    ([0.58, 0.67, 0.69], 0.1, [False, False, False]),  # gap 0.09 > 3 x 0.02, but within the floor
    ([0.50, 0.50, 0.52], 0.0, [False, False, True]),  # no floor: any gap beyond a zero one
    ([40.8, 94.0, 95.0], 2.0, [True, False, False]),
    ([0.1, 0.9], 0.1, [False, False]),  # two seeds: no outliers
    ([0.40, 0.50, 0.60], 0.1, [False, False, False]),
    ([0.1, 0.2, 0.3, 0.4, 1.0], 0.1, [False, False, False, False, True]),  # Q1 0.2, Q3 0.4: 0.7 > 0.3
])
def test_outliers_on_hand_cases(values, floor, expected):
    assert figures.outlier_mask(values, floor).tolist() == expected


def test_norm_ccdf_drops_zero_and_non_finite_norms():
    norms, share = figures.norm_ccdf([2.0, 0.0, 1.0, np.nan, 4.0])
    assert norms.tolist() == [1.0, 2.0, 4.0]
    assert share.tolist() == pytest.approx([1.0, 2 / 3, 1 / 3])


# ---------------------------------------------------------------- everything

def assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200


def test_write_report_writes_the_verdict_first_then_tables_and_figures(figure_group):
    written = write_report(figure_group)
    assert [p.name for p in written] == [
        "comparisons.csv", "width_trend.csv", "verdict.md", "pruning_summary.md", "pruning_summary.csv", "pruning_per_seed.md", "pruning_per_seed.csv",
        "accuracy_vs_pruned_fraction.png", "training_stability.png", "column_norms.png",
        "pruning_ratio_vs_width.png"]
    for path in written:
        if path.suffix == ".png":
            assert_png(path)
    assert (figure_group / "tables" / "pruning_summary.md").read_text().startswith("# Pruning at mce 0.1: grp\n")
    per_seed = pd.read_csv(figure_group / "tables" / "pruning_per_seed.csv")
    assert len(per_seed) == 12
    assert list(per_seed.columns) == [
        "id", "setting_label", "iterate_noise", "iterate_noise_scale", "iterate_noise_alpha", "iterate_noise_filter",
        "model", "width", "depth", "dataset", "lr", "batch_size_train", "mom", "wd", "seed", "eval_freq",
        "convergence_accuracy", "iterations", "train_size", "train_to_cap", "status", "test_acc_before",
        "pruned_test_acc", "accuracy_change", "pruning_ratio", "columns_within_1pt",
        "columns_within_1pt_of_noiseless", "entries_within_1pt_of_noiseless", "rank_within_1pt_of_noiseless",
        "hill_alpha", "block_alpha",
        "steps", "max_train_loss_ratio", "error"]


def test_missing_inputs_skip_only_their_figures(figure_group, capsys):
    (figure_group / "summary" / "sweep_filter.csv").unlink()
    (figure_group / "summary" / "column_norms.csv.gz").unlink()
    names = [p.name for p in write_report(figure_group)]
    assert names == ["comparisons.csv", "width_trend.csv", "verdict.md", "pruning_summary.md", "pruning_summary.csv",
                     "pruning_per_seed.md", "pruning_per_seed.csv", "training_stability.png",
                     "pruning_ratio_vs_width.png"]
    out = capsys.readouterr().out
    assert "skipped accuracy_vs_pruned_fraction.png" in out and "skipped column_norms.png" in out


def test_runs_without_history_are_named(tmp_path, capsys):
    group = make_group(tmp_path, [spec(seed=1), spec(seed=2, status="pending")])
    assert "training_stability.png" in [p.name for p in write_report(group)]
    assert "noise0_mom0.0_width50_seed2 (pending)" in capsys.readouterr().out


def test_the_csvs_of_the_given_pruning_type_are_read_and_no_others(tmp_path, capsys):
    group = make_group(tmp_path, [spec(seed=1, ratio=0.33)])
    for name in ("results_{}_mce.csv", "sweep_{}.csv"):
        (group / "summary" / name.format("filter")).rename(group / "summary" / name.format("kernel"))
    default = run_table(group)  # the group's default, filter: absent, so nothing is analysed
    assert default["status"].tolist() == ["not analysed"] and math.isnan(default["pruning_ratio"].iloc[0])
    assert "no summary/results_filter_mce.csv in grp" in capsys.readouterr().out
    kernel = {"pruning_type": "kernel", "compression_error_metric": "fro_squared"}
    assert run_table(group, kernel)["pruning_ratio"].tolist() == [0.33]
    sweep = read_sweep(group, ["noise0_mom0.0_width50_seed1"], kernel, "columns")
    assert sweep["fraction"].tolist() == pytest.approx(FRACTIONS) and sweep["test_acc"].iloc[0] == 95.0


def test_no_runs_csv_writes_nothing(tmp_path, capsys):
    assert write_report(tmp_path) == []
    assert "no runs.csv" in capsys.readouterr().out


def test_provenance_is_a_table_or_says_it_is_missing(tmp_path):
    group = make_group(tmp_path, [spec(seed=1)])
    rows = markdown_rows(provenance_markdown(group))
    assert {"field": "git_commit", "value": "abc123"} in rows and {"field": "versions.torch", "value": "2.14"} in rows
    assert {"field": "dirty", "value": "false"} in rows
    (group / "provenance.json").unlink()
    assert provenance_markdown(group).startswith("No `provenance.json` in `grp`")


def test_markdown_table_escapes_pipes_and_keeps_cells_as_they_are_unpadded():
    table = pd.DataFrame({"a": ["x|y", "96.0"], "b": [1, 20]})
    assert markdown_table(table) == "| a | b |\n| --- | --- |\n| x\\|y | 1 |\n| 96.0 | 20 |\n"


def test_noise_labels():
    assert noise_label(0, 1.9, 1.0) == "no noise"
    assert noise_label(1, 1.75, 0.1) == "type 1, α=1.75, σ=0.1"


def test_the_verdict_is_given_per_compressor(tmp_path):
    """No noise removes 0.10–0.14 (columns), 0.6 (entries), 0.1 (rank) within 1 pt; noise 0.02–0.06, 0.7–0.9, 0.1."""
    specs = [spec(seed=s, within=w, entries_within=0.6, rank_within=0.1) for s, w in zip((1, 2, 3), (0.10, 0.12, 0.14))]
    specs += [spec(noise=1, seed=s, within=w, entries_within=e, rank_within=0.1, ratio=0.6)
              for s, w, e in zip((1, 2, 3), (0.02, 0.04, 0.06), (0.7, 0.8, 0.9))]
    write_report(make_group(tmp_path, specs))
    text = (tmp_path / "grp" / "tables" / "verdict.md").read_text()
    lead = "comparisons in which noise leaves more or less removable within 1 pt of the run's own accuracy: "
    assert f"- Column pruning, {lead}less in 1 of 1; within 1 pt of no noise's accuracy: less in 1 of 1.\n" in text
    assert f"- Entrywise pruning, {lead}more in 1 of 1; within 1 pt of no noise's accuracy: more in 1 of 1.\n" in text
    assert f"- Singular-value truncation, {lead}not clearly different in 1 of 1;" in text  # 0.1 against 0.1
    [robustness] = markdown_rows(section(text, "## Robustness to pruning"))
    assert (robustness["column pruning"], robustness["entrywise pruning"], robustness["singular-value truncation"]) \
        == ("0.04 / 0.12 ▼", "0.80 / 0.60 ▲", "0.10 / 0.10 ≈")
    assert "No noisy setting of this group has 3 or more widths" in text  # one width: no trend


def test_three_widths_give_the_trend_sentences_and_figures(tmp_path):
    """Noise's gap under columns narrows from -0.3 to -0.1 over widths 50, 100, 200 (identical seeds)."""
    specs = []
    for width, gap in ((50, -0.3), (100, -0.2), (200, -0.1)):
        specs += [spec(seed=s, width=width, within=0.5) for s in (1, 2, 3)]
        specs += [spec(noise=1, seed=s, width=width, within=0.5 + gap) for s in (1, 2, 3)]
    written = write_report(make_group(tmp_path, specs))
    trend_rows = pd.read_csv(tmp_path / "grp" / "tables" / "width_trend.csv")
    columns = trend_rows[trend_rows["compressor"] == "columns"].iloc[0]
    assert columns["sentence"].startswith(
        "Column pruning, type 1, α=1.75, σ=0.1 (stop at 99 %): the gap to no noise narrows with width, from "
        "−0.30 at width 50 to −0.10 at width 200 (slope +0.100 per doubling")
    assert columns["sentence"].endswith("it would close near width 400, within 2× the widest width measured.")
    text = (tmp_path / "grp" / "tables" / "verdict.md").read_text()
    [shown] = [row for row in markdown_rows(section(text, "## The gap at equal accuracy against width"))
               if row["compressor"] == "columns"]
    assert (shown["widths (pairs)"], shown["gap, narrowest"], shown["outcome"]) == ("50–200 (9)", "−0.30", "narrows")
    names = {path.name for path in written}
    assert {"equal_accuracy_vs_width.png", "equal_accuracy_gap_vs_width.png"} <= names
    assert run_table(tmp_path / "grp")["arm"].unique().tolist() == ["stop at 99 %"]


def test_an_arm_whose_lr_falls_as_one_over_width_shares_the_narrower_runs(tmp_path):
    """Widths 50 and 100 at lr 0.05; width 200 at lr 0.025 (= 0.05 * 100 / 200): an arm beyond 100 whose trend
    reads the lr-0.05 runs at 50 and 100. Gaps -0.3, -0.2 at lr 0.05, then -0.1 at width 200."""
    specs = []
    for width, gap, lr in ((50, -0.3, 0.05), (100, -0.2, 0.05), (200, -0.1, 0.025)):
        specs += [spec(seed=s, width=width, within=0.5, lr=lr) for s in (1, 2, 3)]
        specs += [spec(noise=1, seed=s, width=width, within=0.5 + gap, lr=lr) for s in (1, 2, 3)]
    write_report(make_group(tmp_path, specs))
    runs = run_table(tmp_path / "grp")
    assert lr_anchor(runs) == 100
    assert sorted(runs["arm"].unique()) == ["stop at 99 %", "stop at 99 %, lr ∝ 1/width beyond 100"]
    assert set(runs["setting_label"]) == {"no noise, stop at 99 %", "type 1, α=1.75, σ=0.1, stop at 99 %",
                                          "no noise, stop at 99 %, lr ∝ 1/width beyond 100",
                                          "type 1, α=1.75, σ=0.1, stop at 99 %, lr ∝ 1/width beyond 100"}
    widths = trend_runs(runs)
    scaled = widths[widths["arm"] == "stop at 99 %, lr ∝ 1/width beyond 100"]
    assert scaled["width"].unique().tolist() == [50, 100, 200] and len(scaled) == 18
    assert widths["arm"].unique().tolist() == ["stop at 99 %", "stop at 99 %, lr ∝ 1/width beyond 100"]
    trend_rows = pd.read_csv(tmp_path / "grp" / "tables" / "width_trend.csv")
    assert ("Column pruning, type 1, α=1.75, σ=0.1, stop at 99 %, lr ∝ 1/width beyond 100: the gap to no noise "
            "narrows with width, from −0.30 at width 50 to −0.10 at width 200") in "\n".join(trend_rows["sentence"])
    text = (tmp_path / "grp" / "tables" / "verdict.md").read_text()
    assert "train at lr 0.05 · 100 / width; up to width 100" in text


@pytest.mark.parametrize("lrs, anchor", [((0.05, 0.05, 0.05), None), ((0.05, 0.05, 0.025), 100),
                                         ((0.05, 0.05, 0.02), None),  # 0.02 * 200 / 0.05 = 80: no such width
                                         ((0.05, 0.025, 0.0125), 50),
                                         ((0.05, 0.05, 0.1), None),  # lr rises with width
                                         ((0.05, 0.1, 0.1), None)])
def test_the_lr_anchor_is_found_only_for_a_1_over_width_fall(tmp_path, lrs, anchor):
    specs = [spec(seed=1, width=w, lr=lr) for w, lr in zip((50, 100, 200), lrs)]
    assert lr_anchor(run_table(make_group(tmp_path, specs))) == anchor
