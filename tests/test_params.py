import textwrap
from pathlib import Path

import pytest

from htsgd.pipeline.params import load_group

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path, text, name="group.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_grid_expands_to_product_union_and_seeds(tmp_path):
    group = load_group(write(tmp_path, """
        base: {dataset: digits, width: 64, lr: 0.05}
        grid:
          - iterate_noise: [0]
          - iterate_noise: [1, 2]
            iterate_noise_scale: [0.1, 1.0]
        seeds: [1, 2]
    """))
    assert group.name == "group" and len(group.configs) == (1 + 2 * 2) * 2
    assert "noise0_seed1" in group.configs and "noise2_sigma0.1_seed2" in group.configs
    config = group.configs["noise1_sigma1_seed2"]
    assert (config.iterate_noise, config.iterate_noise_scale, config.seed, config.width) == (1, 1.0, 2, 64)


def test_ids_are_stable_and_readable(tmp_path):
    text = """
        base: {dataset: digits}
        grid: {width: [100, 200], iterate_noise_alpha: [1.75]}
        seeds: [3]
    """
    first, second = (load_group(write(tmp_path, text)) for _ in range(2))
    assert list(first.configs) == list(second.configs) == ["alpha1.75_width100_seed3", "alpha1.75_width200_seed3"]


@pytest.mark.parametrize("name", ["demo", "ecg5000_fcn", "mnist_fcn", "cifar10_fcn", "cifar10_vgg", "cifar100_fcn"])
def test_shipped_groups_are_valid(name):
    group = load_group(ROOT / "params" / f"{name}.yaml")
    assert group.configs and {c.seed for c in group.configs.values()} >= {1}
    if name != "demo":
        assert {c.iterate_noise for c in group.configs.values()} == {0, 1, 2, 3}
        assert sorted({c.seed for c in group.configs.values()}) == [1, 2, 3, 4, 5]


def test_a_grid_mapping_may_give_its_own_seeds(tmp_path):
    group = load_group(write(tmp_path, """
        base: {dataset: digits, width: 64}
        grid:
          - iterate_noise: [0]
          - iterate_noise: [1]
            seeds: [4, 5, 6]
        seeds: [1, 2]
    """))
    assert sorted(group.configs) == ["noise0_seed1", "noise0_seed2", "noise1_seed4", "noise1_seed5", "noise1_seed6"]
    with pytest.raises(Exception, match=r"grid\[1\]: seeds = \[\] must be a non-empty list"):
        load_group(write(tmp_path, """
            grid:
              - iterate_noise: [0]
              - {iterate_noise: [1], seeds: []}
        """, name="bad.yaml"))
