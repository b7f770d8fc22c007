"""The group report on a synthetic group folder: numbers against hand-computed ones, figures as real PNGs."""

import math
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.image import imread

from htsgd import report
from htsgd.config import TrainConfig
from htsgd.models import build_model

SEEDS = (1, 2, 3)
NO_NOISE, TYPE_1 = (0, 1.75, 0.1), (1, 1.75, 0.1)
# The configuration checked by hand: type-1 noise at width 50, one value per seed 1, 2, 3.
HAND_BEFORE, HAND_PRUNED, HAND_RATIO = (90.0, 92.0, 97.0), (80.0, 91.0, 95.0), (0.2, 0.5, 0.6)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The analysis CSV's columns, as spec.md section 2 fixes them (plus the run's status).
COLUMNS = ["exp_key", "model", "dataset", "lr", "batch_size", "width", "depth", "seed", "iterations",
           "convergence_accuracy", "it_noise", "it_noise_alpha", "it_noise_scale", "criterion_ratio",
           "pruning_criterion", "train_loss", "train_acc", "test_loss", "test_acc", "pruning_ratio", "status"]


def run_id(noise, width, seed):
    it_noise, alpha, sigma = noise
    return f"noise{it_noise}_alpha{alpha}_sigma{sigma}_width{width}_seed{seed}"


def outcome(noise, width, seed):
    """(test acc before pruning, pruned test acc at mce 0.1, pruning ratio) of a synthetic run."""
    if noise == TYPE_1 and width == 50:
        i = SEEDS.index(seed)
        return HAND_BEFORE[i], HAND_PRUNED[i], HAND_RATIO[i]
    base = 0.3 if noise == TYPE_1 else 0.1
    return 95.0 + seed, 94.0 + seed, base + 0.01 * seed + width / 1000


def make_group(root, widths=(30, 50)):
    """A group folder as the driver and `htsgd analyze` leave it, plus one failed run with stale results."""
    group = root / "demo"
    runs = [(noise, width, seed) for noise in (NO_NOISE, TYPE_1) for width in widths for seed in SEEDS]
    failed = (TYPE_1, max(widths), 4)
    runs_rows, mce_rows, ratio_rows = [], [], []
    torch.manual_seed(0)
    for noise, width, seed in runs + [failed]:
        key = run_id(noise, width, seed)
        status = "failed" if (noise, width, seed) == failed else "converged"
        config = TrainConfig(iterate_noise=noise[0], iterate_noise_alpha=noise[1], iterate_noise_scale=noise[2],
                             dataset="digits", width=width, lr=0.05, batch_size_train=256, seed=seed,
                             convergence_accuracy=99.0)
        runs_rows.append({"id": key, **asdict(config), "status": status, "steps": 500, "wall_time": 3.0,
                          "train_acc": 99.0, "test_acc": 95.0, "error": ""})
        before, pruned, ratio = (0.0, 0.0, 0.99) if status == "failed" else outcome(noise, width, seed)
        common = {"exp_key": key, "model": "fcn", "dataset": "digits", "lr": 0.05, "batch_size": 256,
                  "width": width, "depth": 2, "seed": seed, "iterations": 500, "convergence_accuracy": 99.0,
                  "it_noise": noise[0], "it_noise_alpha": noise[1], "it_noise_scale": noise[2],
                  "train_loss": 0.1, "train_acc": 99.0, "test_loss": 0.2, "status": "converged"}
        mce_rows += [{**common, "criterion_ratio": 0.0, "pruning_criterion": "mce", "test_acc": before, "pruning_ratio": 0.0},
                     {**common, "criterion_ratio": 0.1, "pruning_criterion": "mce", "test_acc": pruned, "pruning_ratio": ratio}]
        for fraction in np.linspace(0.0, 1.0, 11):
            ratio_rows.append({**common, "criterion_ratio": fraction, "pruning_criterion": "parameter_ratio",
                               "test_acc": before * (1 - fraction ** (4 if noise == TYPE_1 else 1)),
                               "pruning_ratio": fraction})
        if status != "failed":
            state = build_model("fcn", (1, 8, 8), 10, width=width, depth=2).state_dict()
            if noise == TYPE_1:  # a few heavy rows, as alpha-stable noise leaves them
                state["hidden.0.weight"] *= torch.distributions.Pareto(1.0, 1.5).sample((width, 1))
            (group / key).mkdir(parents=True)
            torch.save(state, group / key / "model.pt")
    summary = group / "summary"
    summary.mkdir(parents=True)
    pd.DataFrame(runs_rows).to_csv(group / "runs.csv", index=False)
    pd.DataFrame(mce_rows, columns=COLUMNS).to_csv(summary / "results_filter_mce.csv", index=False)
    pd.DataFrame(ratio_rows, columns=COLUMNS).to_csv(summary / "results_filter_parameter_ratio.csv", index=False)
    return group


@pytest.fixture
def group(tmp_path):
    return make_group(tmp_path)


def markdown_rows(path):
    """The data rows of the markdown table in `path`, as dicts keyed by the header."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    split = lambda line: [cell.strip() for cell in line.strip("|").split(" | ")]
    header = split(lines[0])
    return [dict(zip(header, split(line))) for line in lines[2:]]


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200 and image.shape[2] in (3, 4)


def test_summary_statistics_equal_hand_computed_ones(group):
    summary = report.pruning_summary(group)
    row = summary[(summary["it_noise"] == 1) & (summary["width"] == 50)].iloc[0]
    assert row["n_seeds"] == 3  # the failed seed 4 is left out
    assert row["test_acc_before_median"] == 92.0
    assert row["test_acc_before_mean"] == pytest.approx(93.0)
    assert row["test_acc_before_std"] == pytest.approx(math.sqrt((9 + 1 + 16) / 2))  # sample std
    assert row["pruned_test_acc_median"] == 91.0
    assert row["pruned_test_acc_mean"] == pytest.approx(266 / 3)
    assert row["pruned_test_acc_std"] == pytest.approx(np.std(HAND_PRUNED, ddof=1))
    assert row["pruning_ratio_median"] == pytest.approx(0.5)
    assert row["pruning_ratio_mean"] == pytest.approx(1.3 / 3)
    assert row["pruning_ratio_std"] == pytest.approx(np.std(HAND_RATIO, ddof=1))
    assert len(summary) == 4


def test_write_report_writes_tables_and_figures(group):
    written = report.write_report(group)
    names = {p.name for p in written}
    assert names == {"pruning_summary.md", "pruning_summary.csv", "pruning_per_seed.md", "pruning_per_seed.csv",
                     "pruning_ratio_vs_width.png", "column_norms.png", "accuracy_vs_pruned_fraction.png"}
    for png in ("pruning_ratio_vs_width.png", "column_norms.png", "accuracy_vs_pruned_fraction.png"):
        assert_png(group / "figures" / png)
    csv = pd.read_csv(group / "tables" / "pruning_summary.csv")
    assert {"model", "dataset", "depth", "lr", "batch_size", "it_noise_alpha"} <= set(csv.columns)


def test_summary_markdown_labels_rows_by_what_varies(group):
    report.write_report(group)
    text = (group / "tables" / "pruning_summary.md").read_text()
    assert "lr 0.05" in text and "dataset digits" in text  # constant: stated once above the table
    rows = markdown_rows(group / "tables" / "pruning_summary.md")
    assert set(rows[0]) >= {"noise", "width", "seeds"} and "lr" not in rows[0]
    hand = next(r for r in rows if r["noise"] == "type 1, α=1.75, σ=0.1" and r["width"] == "50")
    assert hand["test acc before pruning (%): median"] == "92.0"
    assert hand["test acc before pruning (%): mean ± std"] == f"93.0 ± {math.sqrt(13):.1f}"
    assert {r["noise"] for r in rows} == {"no noise", "type 1, α=1.75, σ=0.1"}


def test_per_seed_table_lists_every_seed_but_not_failed_runs(group):
    report.write_report(group)
    rows = markdown_rows(group / "tables" / "pruning_per_seed.md")
    listed = sorted((r["noise"], r["width"], r["seed"]) for r in rows)
    expected = sorted((label, str(w), str(s)) for label in ("no noise", "type 1, α=1.75, σ=0.1")
                      for w in (30, 50) for s in SEEDS)
    assert listed == expected
    hand = [r for r in rows if r["noise"] != "no noise" and r["width"] == "50"]
    assert [r["pruning ratio at mce 0.1"] for r in hand] == ["0.200", "0.500", "0.600"]


def test_missing_parameter_ratio_results_skip_only_that_figure(group, capsys):
    (group / "summary" / "results_filter_parameter_ratio.csv").unlink()
    names = {p.name for p in report.write_report(group)}
    assert "accuracy_vs_pruned_fraction.png" not in names
    assert not (group / "figures" / "accuracy_vs_pruned_fraction.png").exists()
    assert {"pruning_summary.md", "pruning_ratio_vs_width.png", "column_norms.png"} <= names
    assert "skipped accuracy_vs_pruned_fraction.png" in capsys.readouterr().out


def test_a_single_width_is_still_drawn(tmp_path):
    group = make_group(tmp_path, widths=(50,))
    names = {p.name for p in report.write_report(group)}
    assert "pruning_ratio_vs_width.png" in names
    assert_png(group / "figures" / "pruning_ratio_vs_width.png")


def test_no_analysis_yet_writes_nothing(tmp_path, capsys):
    assert report.write_report(tmp_path) == []
    assert report.pruning_summary(tmp_path) is None
    assert "results_*_mce.csv" in capsys.readouterr().out


def test_markdown_table_escapes_pipes():
    table = pd.DataFrame({"a": ["x|y"], "b": [1]})
    assert report.markdown_table(table) == "| a | b |\n| --- | --- |\n| x\\|y | 1 |\n"


def test_first_hidden_weight_is_found_by_position_in_the_model():
    assert report.first_hidden_weight_name("fcn", "digits", 10, 3) == "hidden.0.weight"
    assert report.first_hidden_weight_name("vgg11_wide", "cifar10", 1, 2) == "features.3.weight"  # not the first conv


def test_column_norms_are_per_hidden_unit():
    linear = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    assert report.column_norms(linear).tolist() == [5.0, 1.0]
    conv = torch.ones(2, 3, 2, 2)
    conv[1] *= 2
    assert report.column_norms(conv) == pytest.approx([math.sqrt(12), 2 * math.sqrt(12)])


def test_noise_labels():
    assert report.noise_label(0, 1.9, 1.0) == "no noise"
    assert report.noise_label(1, 1.75, 0.1) == "type 1, α=1.75, σ=0.1"
