"""results/FINDINGS.md: the answer of every reported group, per dataset, in a page a researcher reads in a minute.

Generated from each group's tables/comparisons.csv and tables/width_trend.csv (the report's), never typed:
per dataset at most five sentences, one per question (cost, robustness, the frontier with its floor, the
paper's criterion, the trend with width), each counting comparisons per group and linking to where they
come from. The same sentences go into the README between FINDINGS_START and FINDINGS_END.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.comparisons import HEADLINE_THRESHOLD, MIN_PAIRS, SWEEP_STEP, THRESHOLDS
from ..analysis.run_table import read_runs
from ..analysis.trend import AT_FLOOR, CLOSES, NARROWS, NO_TREND, WIDENS
from ..analysis.verdict import per_comparison, tally_text
from ..core.data import TEST_SET_SIZE
from ..core.prune import MCE_RATIO
from ..record import storage
from ..errors import UserError
from ..record.names import (COMPARISONS_CSV, FINDINGS_END, FINDINGS_MD, FINDINGS_START, RUNS_CSV, TABLES,
                            VERDICT_MD, WIDTH_TREND_CSV)
from ..record.public_paths import public_path
from .write import CONTROL_CSV

GAP_PNG = "figures/equal_accuracy_gap_vs_width.png"

CLAIM = ("The paper claims that SGD with α-stable noise added to the hidden-layer weights after every step makes "
         "wide networks compressible: most hidden units can be pruned with little loss of accuracy, more so than "
         "without the noise.")

GLOSSARY = {
    "mce": f"the paper's pruning criterion: remove the columns with the smallest norms while their squared norm "
           f"stays within a share ({MCE_RATIO:g}) of the layer's; the *pruning ratio* is the share of columns removed",
    "noise types 1/2/3": "type 1 adds one α-stable draw per hidden unit to all its incoming weights; type 2 an "
                         "independent α-stable draw per weight; type 3 a Gaussian vector per unit scaled by one "
                         "α/2-stable draw (elliptic, sub-Gaussian: heavy-tailed per unit, dependent within it)",
    "α, σ": "the tail index of the α-stable law (2 is Gaussian; smaller is heavier-tailed) and its scale",
    "arm": "one way of training every width: a stopping rule (stop at a train accuracy, or a fixed number of "
           "steps), and where stated a learning rate scaled as 1/width",
    "baseline": "the no-noise runs of the same arm with the same flags but the noise flags and the seed",
    "seed pair": "a noisy run and its baseline's run with the same seed: the same initial weights and batches",
    "counted": "a run that converged (reached its train accuracy) or, with a fixed number of steps, completed "
               "them; statistics are over counted runs",
    "decided": f"a comparison with at least {MIN_PAIRS} counted seed pairs; noise is *better* or *worse* when the "
               f"median paired difference is at least one resolvable step ({SWEEP_STEP:g} of the layer, or one "
               "test image) and more pairs point that way; otherwise *not clearly different*",
    "cost": "noise's unpruned test accuracy against no noise's, per seed pair",
    "robustness": "the share removable while accuracy stays within 1 point of the run's own unpruned accuracy",
    "frontier": "the share removable while accuracy stays within t points of no noise's reference accuracy "
                f"(the median of its counted seeds), t in {', '.join(f'{t:g}' for t in THRESHOLDS)}",
    "floor": "the share of noisy seeds already below the frontier's line before anything is removed: they score "
             "0 whatever pruning does, which measures noise's accuracy cost, not prunability",
}


def unreported_groups(results_dir) -> list[Path]:
    """The groups under `results_dir` with runs but no comparisons.csv: not reported by the current report."""
    return sorted(path.parent for path in Path(results_dir).glob(f"*/{RUNS_CSV}")
                  if not (path.parent / TABLES / COMPARISONS_CSV).is_file())


def reported_groups(results_dir) -> list[Path]:
    """The groups under `results_dir` whose report wrote comparisons.csv, by name."""
    return sorted(path.parent.parent for path in Path(results_dir).glob(f"*/{TABLES}/{COMPARISONS_CSV}"))


def _read(group: Path) -> tuple:
    """A reported group's comparisons, width trend, runs and Gaussian control (empty where it has none)."""
    frame = pd.read_csv(group / TABLES / COMPARISONS_CSV)
    trend_path, control_path = group / TABLES / WIDTH_TREND_CSV, group / TABLES / CONTROL_CSV
    trend = pd.read_csv(trend_path) if trend_path.is_file() else pd.DataFrame(columns=["outcome"])
    control = pd.read_csv(control_path) if control_path.is_file() else pd.DataFrame()
    return frame, trend, read_runs(group), control


def _per_group(groups: dict, text, root: str, figure: bool = False) -> str:
    """'digits_width …; demo …', each group linked to its verdict, or with `figure` to its gap figure where it has
    a trend (`root`: the results folder as the page that links sees it)."""
    def target(name, trend):
        return f"{root}{name}/{GAP_PNG if figure and not trend.empty else f'{TABLES}/{VERDICT_MD}'}"

    def pairs(frame):
        return int(per_comparison(frame)["pairs"].sum())

    return "; ".join(f"[{name}]({target(name, trend)}) {text(frame, trend)} ({pairs(frame)} seed pairs)"
                     for name, (frame, trend, *_) in groups.items())


def _floor(frame: pd.DataFrame) -> str:
    values = per_comparison(frame)[f"floor_{HEADLINE_THRESHOLD:g}pt"].dropna()
    return f", median floor {np.median(values):.0%}" if len(values) else ""


def _trend(trend: pd.DataFrame) -> str:
    if trend.empty:
        return "no trend stated (fewer than 3 widths)"
    outcomes = list(trend["outcome"])
    words = [f"{word} {outcomes.count(word)}" for word in (NARROWS, CLOSES, AT_FLOOR, WIDENS, NO_TREND)
             if outcomes.count(word)]
    return ", ".join(words) + f" of {len(outcomes)}"


def dataset_sentences(groups: dict, root: str) -> list[str]:
    """The five sentences of one dataset's groups (name -> `_read`'s tuple)."""
    return [
        "**Cost.** Noise's unpruned test accuracy against no noise's: "
        + _per_group(groups, lambda f, t: tally_text(per_comparison(f)["unpruned_outcome"], "higher", "lower"), root) + ".",
        "**Robustness** (units removable within 1 point of the run's own accuracy): "
        + _per_group(groups, lambda f, t: tally_text(per_comparison(f)["own_1pt_outcome"], "more", "fewer"), root) + ".",
        f"**Frontier** (units removable within {HEADLINE_THRESHOLD:g} point of no noise's accuracy): "
        + _per_group(groups, lambda f, t: tally_text(per_comparison(f)["outcome"], "more", "fewer") + _floor(f), root)
        + ".",
        f"**The paper's criterion** (pruning ratio at mce {MCE_RATIO:g}): "
        + _per_group(groups, lambda f, t: tally_text(per_comparison(f)["mce_outcome"], "higher", "lower"), root)
        + _control(groups, root) + ".",
        "**Against width** (the frontier's paired gap per arm, setting and compressor, linked to its figure; "
        "the pairs of every width): "
        + _per_group(groups, lambda f, t: _trend(t), root, figure=True) + ".",
    ]


def _control(groups: dict, root: str) -> str:
    """'; the heavy tail against … : demo …' for the groups with a Gaussian control; '' where none has one."""
    controlled = {name: (control, pd.DataFrame()) for name, (*_, control) in groups.items() if not control.empty}
    if not controlled:
        return ""
    return ("; the heavy tail against its Gaussian control (α = 2, the same σ): "
            + _per_group(controlled, lambda f, t: tally_text(per_comparison(f)["mce_outcome"], "higher", "lower"),
                         root))


def summary(results_dir, root: str = "") -> str:
    """Per dataset a heading and its sentences: FINDINGS.md's answer, and with `root` "results/" the README's."""
    by_dataset: dict = {}
    for group in reported_groups(results_dir):
        read = _read(group)
        frame, _, runs, _ = read
        if frame.empty or runs is None:
            continue
        for dataset in runs["dataset"].unique():
            by_dataset.setdefault(dataset, {})[group.name] = read
    missing = unreported_groups(results_dir)
    note = ("\n**Not in this summary**: " + ", ".join(g.name for g in missing) + ": a record that the current report "
            "has not read (no tables/comparisons.csv); `htsgd status` on its params file says what is out of date, "
            "and `htsgd run` on it regenerates it.\n") if missing else ""
    if not by_dataset:
        return "No group has been reported yet (run `htsgd run params/<group>.yaml`).\n" + note
    return "\n".join(f"**{dataset}** (comparisons counted per group; outcomes for noise):\n\n"
                     + "".join(f"- {sentence}\n" for sentence in dataset_sentences(groups, root))
                     for dataset, groups in by_dataset.items()) + note


def _limits(results_dir) -> str:
    pairs, sizes = [], set()
    for group in reported_groups(results_dir):
        frame, _, runs, _ = _read(group)
        pairs += list(frame["pairs"].dropna())
        sizes |= {(d, TEST_SET_SIZE[d]) for d in ([] if runs is None else runs["dataset"].unique())}
    granularity = "; ".join(f"one {d} test image is {100 / n:.2g} points" for d, n in sorted(sizes))
    counts = sorted({int(n) for n in pairs if n >= 2})
    least, most = (counts[0], counts[-1]) if counts else (0, 0)

    def sign_test(n):  # two-sided: every pair pointing one way, under no effect
        return f"{2 * 0.5 ** n:.2g} with {n} pairs"

    chance = sign_test(least) + ("" if most == least else f", {sign_test(most)}")
    span = f"{least}" if least == most else f"{least} to {most}"
    return (f"- **Seeds.** A comparison rests on {span} seed pairs. That every pair points one way has, "
            f"under no effect, probability {chance} (a two-sided sign test), so with fewer than 6 pairs no outcome "
            "reaches p < 0.05: *better* and *worse* say where the seeds point, not that an effect is established. "
            "Runs with heavy-tailed noise are chaotic: expect the distributions over seeds, not single runs, to "
            "reproduce on another machine.\n"
            f"- **Granularity.** {granularity[:1].upper()}{granularity[1:]}; removable shares move in steps of {SWEEP_STEP:g}.\n"
            "- **Scope.** Small fully connected networks with one hidden layer on digits and a 5,000-image subset "
            "of Fashion-MNIST, trained on CPUs; not the paper's datasets, widths or training lengths.\n")


def findings(results_dir) -> str:
    glossary = "".join(f"- **{term}**: {text}.\n" for term, text in GLOSSARY.items())
    return (f"# What the records show\n\n{CLAIM} Each group below tests this against no noise, seed pair by seed "
            "pair, and keeps apart three things a single number mixes: what noise costs in accuracy before "
            "pruning, how robust to pruning the network is, and how much can be removed at equal accuracy.\n\n"
            f"{FINDINGS_START}\n{summary(results_dir)}{FINDINGS_END}\n\n"
            f"## What the records cannot show\n\n{_limits(results_dir)}\n## Glossary\n\n{glossary}")


def write_findings(results_dir) -> Path:
    return storage.write_text(Path(results_dir) / FINDINGS_MD, findings(results_dir))


README_ROOT = "results/"  # the results folder as the README, at the top of the repository, links to it


def readme_block(text: str) -> str:
    """The part of `text` between the lines FINDINGS_START and FINDINGS_END (exclusive); '' when it has none."""
    if FINDINGS_START not in text or FINDINGS_END not in text:
        return ""
    return text.split(FINDINGS_START, 1)[1].split(FINDINGS_END, 1)[0].removeprefix("\n")


def write_readme_block(readme, results_dir) -> Path:
    """Replace the README's findings block by the summary of `results_dir`, its links rooted at README_ROOT."""
    readme = Path(readme)
    text = readme.read_text() if readme.is_file() else ""
    if not readme_block(text) and f"{FINDINGS_START}\n{FINDINGS_END}" not in text:
        raise UserError(f"{public_path(readme)} has no {FINDINGS_START} ... {FINDINGS_END} block, each marker on a line "
                        "of its own: add the two lines where the findings belong")
    before, rest = text.split(FINDINGS_START, 1)
    after = rest.split(FINDINGS_END, 1)[1]
    return storage.write_text(readme, f"{before}{FINDINGS_START}\n{summary(results_dir, README_ROOT)}{FINDINGS_END}{after}")


def findings_command(results_dir, readme=None):
    """`htsgd findings`: FINDINGS.md, and with `readme` the README's block, each named when written."""
    print(f"wrote {public_path(write_findings(results_dir))}")
    if readme is not None:
        print(f"wrote the findings block of {public_path(write_readme_block(readme, results_dir))}")
