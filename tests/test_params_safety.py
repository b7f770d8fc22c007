"""Params files that would write outside their group's folder, repeat a configuration, ask for what training cannot
do, or expand to a grid too large to plan are refused at load time, with one line naming the file, key and value."""

import textwrap
from pathlib import Path

import pytest

from htsgd.cli import main
from htsgd.core import config
from htsgd.core.datasets import DATASETS
from htsgd.errors import UserError
from htsgd.pipeline import params
from htsgd.pipeline.params import load_group
from htsgd.pipeline.plan import make_plan
from htsgd.pipeline.status import status_group

ROOT = Path(__file__).resolve().parent.parent
BASE = "base: {dataset: digits, width: 16, iterations: 5}\n"


def write(folder, text, name="group.yaml"):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def refused(path, *parts, **options) -> str:
    """Load `path`, expecting one UserError of one line that names the file and every part."""
    with pytest.raises(UserError) as err:
        load_group(path, **options)
    message = str(err.value)
    assert "\n" not in message and str(path) in message, message
    for part in parts:
        assert part in message, message
    return message


def widths_by_rates(n_width, n_lr) -> str:
    """A grid mapping of n_width * n_lr points, written compactly."""
    return f"{{width: {list(range(1, n_width + 1))}, lr: {[round(0.001 * i, 3) for i in range(1, n_lr + 1)]}}}"


def grid_of(n_width, n_lr, seeds) -> str:
    return BASE + f"grid: {widths_by_rates(n_width, n_lr)}\nseeds: {list(range(seeds))}\n"


# 1. Nothing is written outside the group's folder, and a params file that is not text is one line.

@pytest.mark.parametrize("name", ["...yaml", "..yaml", "-x.yaml", "a..b.yaml", "a b.yaml"])
def test_a_group_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, name):
    refused(write(tmp_path, BASE, name), repr(Path(name).stem), "group name", "letters, digits")


@pytest.mark.parametrize("value", ["../x", "a/b", "..", "x y"])
def test_a_grid_value_that_is_not_a_plain_folder_name_is_refused(tmp_path, value):
    refused(write(tmp_path, BASE + f"grid: {{dataset: [{value!r}]}}\n"), f"dataset = {value!r}", "run folder")


def test_a_group_folder_that_leads_out_of_the_results_folder_is_refused(tmp_path):
    results, elsewhere = tmp_path / "results", tmp_path / "elsewhere"
    results.mkdir(), elsewhere.mkdir()
    (results / "group").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UserError, match="not a folder directly in"):
        status_group(write(tmp_path, BASE), results)


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01", b"base: {}\n\x00\x01\x02\n"],
                         ids=["not utf-8", "control characters"])
def test_a_binary_params_file_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "group.yaml"
    path.write_bytes(content)
    refused(path)
    assert main(["status", str(path), "--results_dir", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# 2. A value or a configuration given twice is refused, not dropped.

@pytest.mark.parametrize("grid", ["{width: [500, 500]}", "{width: [500, 500.0]}", "{lr: [0.1, 0.10]}"])
def test_a_repeated_grid_value_is_refused(tmp_path, grid):
    key = grid[1:grid.index(":")]
    refused(write(tmp_path, BASE + f"grid: {grid}\n"), f"grid: {key}", "more than once", "give each value once")


@pytest.mark.parametrize("grid", ["[{iterate_noise: [0]}, {iterate_noise: [0, 1]}]",
                                  "[{iterate_noise: [0]}, {iterate_noise: [0], iterate_noise_scale: [1.0]}]"],
                         ids=["same id", "another id"])
def test_two_grid_mappings_giving_one_configuration_are_refused(tmp_path, grid):
    refused(write(tmp_path, BASE + f"grid: {grid}\n"), "grid[0]", "grid[1]", "iterate_noise", "same configuration")


@pytest.mark.parametrize("path", sorted((ROOT / "params").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_group_still_loads(path):
    assert load_group(path).configs


# 3. What the training code cannot do is refused before anything runs.

def test_the_seed_limit_is_the_training_codes():
    """torch takes seeds below 2**64; the batch order's generator is seeded with seed * 1_000_003 + epoch."""
    from htsgd.core.train import epoch_order

    iterations = 7
    epoch_order(iterations - 1, 2, config.max_seed(iterations), "cpu")
    with pytest.raises((ValueError, RuntimeError)):
        epoch_order(iterations - 1, 2, config.max_seed(iterations) + 1, "cpu")


def test_a_seed_beyond_the_limit_is_refused(tmp_path):
    limit = config.max_seed(5)
    assert load_group(write(tmp_path, BASE + f"seeds: [{limit}]\n")).configs
    refused(write(tmp_path, BASE + f"seeds: [{limit + 1}]\n"), f"seed = {limit + 1}", f"0 to {limit}")
    refused(write(tmp_path, BASE + f"seeds: [{2 ** 64}]\n"), f"seed = {2 ** 64}")


def test_the_train_size_range_is_what_a_stratified_subset_takes(digits):
    from htsgd.core.data import training_subset

    spec = DATASETS["digits"]
    low, high = spec.classes, spec.train_size - spec.classes
    for size in (low, high, spec.train_size):
        training_subset(digits.train_y.cpu(), size)
    for size in (low - 1, high + 1):
        with pytest.raises(ValueError):
            training_subset(digits.train_y.cpu(), size)


@pytest.mark.parametrize("size", [1, 9, 1428, 1436])
def test_a_train_size_a_stratified_subset_cannot_take_is_refused(tmp_path, size):
    refused(write(tmp_path, BASE + f"grid: {{train_size: [{size}]}}\n"), f"train_size = {size}", "digits",
            "0, 10 to 1427, or 1437")


@pytest.mark.parametrize("size", [0, 10, 1427, 1437])
def test_a_train_size_a_stratified_subset_takes_is_allowed(tmp_path, size):
    assert load_group(write(tmp_path, BASE + f"grid: {{train_size: [{size}]}}\n")).configs


def test_every_configuration_is_checked_for_what_training_can_run():
    """`htsgd train`, the explorer and the records' readers build configurations with make_config too."""
    assert config.check_trainable(config.TrainConfig(dataset="digits", train_size=10), "--flags") is None
    with pytest.raises(UserError, match=r"--flags: seed = 18446744073709551616 is not allowed"):
        config.make_config({"seed": 2 ** 64}, "--flags")
    with pytest.raises(UserError, match=r"--flags: train_size = 9 is not allowed for digits; use 0, 10 to 1427"):
        config.make_config({"dataset": "digits", "train_size": 9}, "--flags")


# 4. A grid too large to plan is refused before it is expanded, unless asked for.

def test_a_large_grid_is_refused_before_it_is_expanded(tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr(params, "make_config", lambda *a, **k: made.append(a))
    path = write(tmp_path, grid_of(100, 100, 10))
    refused(path, "grid expands to 100000 configurations", "pass --large_grid")
    assert made == []


def test_a_grid_counts_every_mapping_with_its_seeds(tmp_path):
    path = write(tmp_path, BASE + f"grid:\n  - {{iterate_noise: [1], seeds: [7]}}\n  - {widths_by_rates(100, 50)}\n"
                 "seeds: [0, 1]\n")
    refused(path, "grid expands to 10001 configurations")
    assert len(load_group(path, large_grid=True).configs) == 10_001


def test_a_large_grid_plans_and_shows_when_asked_for(tmp_path, capsys):
    path = write(tmp_path, grid_of(100, 100, 2))
    assert main(["status", str(path), "--results_dir", str(tmp_path)]) == 2
    assert "pass --large_grid" in capsys.readouterr().err
    group = load_group(path, large_grid=True)
    plan = make_plan(group, tmp_path / group.name)
    assert plan.to_train == list(group.configs) and len(plan.to_train) == 20_000
    assert main(["status", str(path), "--results_dir", str(tmp_path), "--large_grid"]) == 0
    assert "20000 pending" in capsys.readouterr().out
