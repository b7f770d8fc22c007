"""The networks the explore notebook prunes: a finished run's, from its model.pt or retrained in memory from its
config.json where that takes seconds; and the datasets they are evaluated on, loaded once."""

from dataclasses import dataclass
from pathlib import Path

from ...core.config import FIELD_TYPES, TrainConfig, make_config
from ...core.data import load
from ...core.train import train
from ...errors import UserError
from ...record import names, run_folder
from ...record.trained_run import load_model

RETRAINABLE_DATASETS = ("digits",)  # small enough to retrain a run while the reader waits
_data_cache: dict = {}


class WeightsUnavailable(UserError):
    """A run's model.pt is not here and retraining it would not take seconds; the message says how to get it."""


@dataclass
class RunNetwork:
    """A run's trained network and where it came from: its model.pt (`weights`) or retrained here (`retrained`)."""
    group_dir: Path
    run_id: str
    config: TrainConfig
    model: object
    data: object
    source: str
    recorded: dict  # the record's metrics.json
    retrained: dict | None = None  # train's metrics when retrained here


def get_data(dataset: str, data_dir="data", device="cpu", train_size: int = 0):
    """A dataset, loaded once per (name, folder, device, training subset) and kept."""
    key = (dataset, str(data_dir), str(device), train_size)
    if key not in _data_cache:
        _data_cache[key] = load(dataset, data_dir, device, train_size)
    return _data_cache[key]


def can_retrain(config: TrainConfig) -> bool:
    """Whether retraining the run takes seconds: digits (1,437 training images) at any width of the records."""
    return config.dataset in RETRAINABLE_DATASETS


def no_weights_message(group_dir, run_id: str, config: TrainConfig) -> str:
    group = Path(group_dir)
    return (f"{group.name}/{run_id} has no {names.WEIGHTS}: committed records keep no weights, and retraining a "
            f"{config.dataset} run (width {config.width}, up to {config.iterations} steps) takes far longer than "
            f"a reader waits. To get the weights, run `htsgd run params/{group.name}.yaml` on a machine with the "
            f"{config.dataset} data (it writes {names.WEIGHTS} into every run folder), then pick the run again.")


def load_network(group_dir, run_id: str, data_dir="data", device="cpu", on_evaluation=None) -> RunNetwork:
    """The network of a finished run: loaded from model.pt, else retrained from config.json when that takes
    seconds (`on_evaluation` sees each history row, e.g. for a progress bar); never writes into the record.

    Raises UserError (why, and what to do) for a run that did not finish or diverged, and
    WeightsUnavailable for a run without weights that would take long to retrain.
    """
    group_dir = Path(group_dir)
    run_dir = group_dir / run_id
    saved = run_folder.read_config(run_dir)
    if saved is None:
        raise UserError(f"{group_dir.name}/{run_id} has no {names.CONFIG}: it has not run (see `htsgd status`)")
    # Only the training fields: older records also hold `checkpoint_every`, which changes no result.
    config = make_config({k: v for k, v in saved.items() if k in FIELD_TYPES}, where=str(run_dir / names.CONFIG))
    if not run_folder.is_complete(run_dir):
        raise UserError(f"{group_dir.name}/{run_id} has no {names.METRICS}: its training did not finish")
    recorded = run_folder.read_metrics(run_dir)
    if recorded["status"] not in names.ANALYSED:
        raise UserError(f"{group_dir.name}/{run_id} {recorded['status']}: its weights are not finite, so the "
                        "analysis does not prune it")
    has_weights = (run_dir / names.WEIGHTS).is_file()
    if not has_weights and not can_retrain(config):
        raise WeightsUnavailable(no_weights_message(group_dir, run_id, config))
    data = get_data(config.dataset, data_dir, device, config.train_size)
    if has_weights:
        model = load_model(run_dir, data.input_shape, data.num_classes, device)
        return RunNetwork(group_dir, run_id, config, model, data, "weights", recorded)
    result = train(config, data, device=device, progress=False, on_evaluation=on_evaluation)
    return RunNetwork(group_dir, run_id, config, result["model"], data, "retrained", recorded, result["metrics"])
