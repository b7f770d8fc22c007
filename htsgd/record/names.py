"""Every file name in a results folder and every status a run can have: defined here once.

A group folder `results/<group>/` holds one folder per run, the group's record files and the
outputs of its analysis and report. Other modules import these names; none spells them itself.
"""

# A run's folder (see `run_folder`).
CONFIG, WEIGHTS, HISTORY, METRICS = "config.json", "model.pt", "history.csv", "metrics.json"
CHECKPOINT, PROVENANCE, FAILURE = "checkpoint.pt", "provenance.json", "failure.json"
NOTEBOOK, RUNNING_NOTEBOOK, FAILED_NOTEBOOK = "train.ipynb", "train.running.ipynb", "train.failed.ipynb"
RUN_FILES = (CONFIG, WEIGHTS, HISTORY, METRICS, CHECKPOINT, PROVENANCE, FAILURE, NOTEBOOK, RUNNING_NOTEBOOK,
             FAILED_NOTEBOOK)

# A group's folder (see `group_record`); the group's provenance has the run's file name.
RUNS_CSV = "runs.csv"
SUMMARY, TABLES, FIGURES = "summary", "tables", "figures"
FINDINGS_MD = "FINDINGS.md"  # in the results folder: every reported group's answer, per dataset
FINDINGS_START, FINDINGS_END = "<!-- findings -->", "<!-- /findings -->"  # FINDINGS.md's summary, also in the README
COMPARISONS_CSV = "comparisons.csv"  # in tables/: every comparison, seed-paired, the verdict's source
WIDTH_TREND_CSV = "width_trend.csv"  # in tables/: the gap against width per arm, setting and compressor
VERDICT_MD = "verdict.md"  # in tables/: the group's verdict, its first bold sentence the finding
COLUMN_NORMS_CSV = "column_norms.csv.gz"  # in summary/
LOCKS = ".locks"  # claims on the group and its runs, out of the record
SLURM_LOGS = "logs/slurm"
ANALYSIS_CACHE = "summary/runs"  # one analysis per run, kept so that a new seed analyses only itself

# How a training run ended (metrics.json's status).
CONVERGED, CAP, DIVERGED, NOT_LEARNING = "converged", "cap", "diverged", "not_learning"
COMPLETED = "completed"  # a `train_to_cap` run that took all its steps: complete, never "unconverged"
# How a configuration that has no complete run stands (runs.csv, `htsgd status`).
FAILED, TIMEOUT, PENDING = "failed", "timeout", "pending"
# How the analysis saw a run.
ERROR, INCOMPLETE, NOT_ANALYSED = "error", "incomplete", "not analysed"

ANALYSED = (CONVERGED, COMPLETED, CAP, NOT_LEARNING)  # runs whose weights are finite, so the analysis prunes them
COUNTED = (CONVERGED, COMPLETED)  # runs that count in a configuration's medians and in its baseline
FAILURES = (FAILED, TIMEOUT)


def criterion_label(pruning_criterion: str, compression_error_metric: str = "fro_squared") -> str:
    """`mce`, `mce_frob` or `parameter_ratio` (the error metric only matters for mce)."""
    if pruning_criterion == "mce" and compression_error_metric != "fro_squared":
        return f"mce_{compression_error_metric}"
    return pruning_criterion


def results_csv(pruning_type: str, pruning_criterion: str, compression_error_metric: str = "fro_squared") -> str:
    """The analysis table of one criterion, in summary/: `results_<type>_<criterion label>.csv`."""
    return f"results_{pruning_type}_{criterion_label(pruning_criterion, compression_error_metric)}.csv"


def sweep_csv(pruning_type: str) -> str:
    """Every run's equal-accuracy sweep, in summary/."""
    return f"sweep_{pruning_type}.csv"
