"""Pruning as the analysis prunes: its own calls, so a fraction of the slider gives exactly the accuracy of the
group's sweep (`parameter_ratio`, smallest-norm columns of every hidden layer first) and the paper's point (`mce`
at 0.1) exactly its row."""

from ...analysis.run_analysis import SWEEP_FRACTIONS
from ...core.evaluate import evaluate
from ...core.prune import DEFAULT_PRUNING_TYPE, prune_model


def prune_point(model, data, amount: float, criterion: str = "parameter_ratio",
                pruning_type: str = DEFAULT_PRUNING_TYPE,
                compression_error_metric: str = "fro_squared", ignore_last_layer: bool = True) -> dict:
    """Prune `model` by `criterion` at `amount` and evaluate it on the full train and test sets, by the calls of
    `analyze_run` (so the numbers are the analysis' own); with the columns removed, over all hidden layers
    and in the first one."""
    pruned = prune_model(model, amount, criterion, compression_error_metric, pruning_type)
    train_loss, train_acc = evaluate(pruned.model, data.train_x, data.train_y)
    test_loss, test_acc = evaluate(pruned.model, data.test_x, data.test_y)
    hidden = [layer for layer in pruned.layers if layer.role == "hidden"]
    removed, columns = sum(layer.columns_removed for layer in hidden), sum(layer.columns for layer in hidden)
    return {"criterion": criterion, "amount": amount, "train_loss": train_loss, "train_acc": train_acc,
            "test_loss": test_loss, "test_acc": test_acc, "pruning_ratio": pruned.pruning_ratio(ignore_last_layer),
            "columns_removed": removed, "columns": columns, "fraction_removed": removed / columns if columns else 0.0,
            "first_layer": hidden[0].name, "first_layer_removed": hidden[0].columns_removed,
            "first_layer_columns": hidden[0].columns}


def snap(fraction: float) -> float:
    """The sweep fraction nearest `fraction`."""
    return min(SWEEP_FRACTIONS, key=lambda f: abs(f - fraction))
