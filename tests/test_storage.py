import pickle

import pytest
import torch

from htsgd.record import storage
from htsgd.record.trained_run import load_tensors, save_tensors


class _Payload:
    """Pickles to a call of open(marker, "w"): loading it would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_code_in_a_weights_file_is_refused_not_run(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"hidden.0.weight": torch.zeros(2, 2), "extra": _Payload(marker)}, tmp_path / "model.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_tensors(tmp_path / "model.pt")
    assert not marker.exists()


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = storage.write_text(tmp_path / "runs.csv", "old\n")

    def half_then_crash(f):
        f.write(b"new, half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        storage.atomic_write(path, half_then_crash)
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["runs.csv"]


def test_weights_round_trip(tmp_path):
    state = {"w": torch.arange(6.0).view(2, 3)}
    save_tensors(tmp_path / "m.pt", state)
    assert torch.equal(load_tensors(tmp_path / "m.pt")["w"], state["w"])
