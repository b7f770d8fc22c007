"""One run's analysis: its network pruned at every criterion value, its compressor sweep, and its
first hidden layer's column norms and tail indices, read from its stored weights (only read).

Each criterion value (`core.prune.CRITERION_RATIOS`) gives a row: train and test loss and accuracy on
the full sets, and the pruning ratio. The sweep compresses every hidden layer with each compressor
(`core.compress`: whole columns smallest norm first, single entries smallest magnitude first,
singular values smallest first) at target fractions 0, 2 %, ..., 100 % (`SWEEP_FRACTIONS`) and takes
the test accuracy at each. The equal-accuracy fraction (`prunable_fraction`) is the share of hidden
weights removed at the last step before the first whose accuracy is more than 1 point below a
reference (a prefix rule: a later recovery does not count); here the reference is the run's own
unpruned test accuracy, `unpruned_test_acc`: `columns_within_1pt`, `entries_within_1pt`, `rank_within_1pt`.
"""

from ..core.compress import COMPRESSORS
from ..core.config import make_config
from ..core.evaluate import evaluate
from ..core.models import build_model, hidden_layers
from ..core.prune import CRITERION_RATIOS, DEFAULT_PRUNING_TYPE, column_sq_norms, prune_model
from ..core.sweep import accuracy_sweep
from ..record import names
from ..record.trained_run import load_tensors
from .baseline import EQUAL_ACCURACY_METRICS, TOLERANCE
from .runs import Run
from .tail_index import column_tail_indices

SWEEP_FRACTIONS = tuple(k / 50 for k in range(51))  # target fractions, in steps of 2 %


def analyze_run(run: Run, data, criteria, compression_error_metric="fro_squared", ignore_last_layer=True,
                pruning_type=DEFAULT_PRUNING_TYPE, device="cpu") -> dict:
    """Prune and evaluate one run: rows per criterion, its sweep, its first layer's column norms and tail indices."""
    config = make_config(run.config, where=str(run.path / names.CONFIG))
    model = build_model(config.model, data.input_shape, data.num_classes, config.width, config.depth)
    model.load_state_dict(load_tensors(run.path / names.WEIGHTS, map_location="cpu"))
    model.to(device).eval()
    rows = {}
    for criterion in criteria:
        rows[criterion] = []
        for ratio in CRITERION_RATIOS[criterion]:
            pruned = prune_model(model, ratio, criterion, compression_error_metric, pruning_type)
            train_loss, train_acc = evaluate(pruned.model, data.train_x, data.train_y)
            test_loss, test_acc = evaluate(pruned.model, data.test_x, data.test_y)
            rows[criterion].append({"criterion_ratio": ratio, "train_loss": train_loss, "train_acc": train_acc,
                                    "test_loss": test_loss, "test_acc": test_acc,
                                    "pruning_ratio": pruned.pruning_ratio(ignore_last_layer)})
    sweep = [{"compressor": compressor, **point} for compressor in COMPRESSORS
             for point in accuracy_sweep(model, compressor, SWEEP_FRACTIONS, data.test_x, data.test_y, pruning_type)]
    first = hidden_layers(model)[0][1].weight.detach().cpu()
    unpruned = unpruned_test_acc(rows)
    own = {EQUAL_ACCURACY_METRICS[c][0]: prunable_fraction(sweep, c, unpruned) for c in COMPRESSORS}
    return {"rows": rows, "sweep": sweep, "norms": column_sq_norms(first, "filter").sqrt().tolist(),
            "metrics": {**column_tail_indices(first), **own}}


def unpruned_test_acc(rows: dict) -> float:
    """The run's unpruned test accuracy, defined once: its rows at criterion value 0, which every criterion
    evaluates and where pruning leaves the network's function as it was (mce 0 zeroes only columns that are
    already zero). Every reference accuracy is this; the sweep's fraction-0 points are the compressors' own."""
    return next(row["test_acc"] for criterion_rows in rows.values() for row in criterion_rows
                if row["criterion_ratio"] == 0)


def prunable_fraction(sweep, compressor: str, reference_acc: float, tolerance: float = TOLERANCE) -> float:
    """The largest share of the hidden weights `compressor` removed, along its sweep, before test accuracy first
    fell more than `tolerance` below the reference (a prefix rule: a later recovery does not count)."""
    kept = 0.0
    for point in (p for p in sweep if p["compressor"] == compressor):
        if point["test_acc"] < reference_acc - tolerance - 1e-9:
            break
        kept = point["removed"]
    return kept
