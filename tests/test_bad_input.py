"""Bad input gets one clear message naming where, what and what is allowed, before any compute."""

import textwrap

import pytest

from htsgd.cli import main
from htsgd.errors import UserError
from htsgd.pipeline.params import load_group

GOOD_BASE = "base: {dataset: digits, width: 16, iterations: 5}\n"

BAD_PARAMS = [
    ("base: {lr: 1e-3}", "base: lr = '1e-3' is not a number (YAML reads a number as a string unless it has a dot and a signed exponent"),
    ("base: {lr: 1.0e20}", "write 1.0e-3 or 1.0e+20, not 1e-3 or 1.0e20"),
    ("base: {widht: 10}", "unknown key 'widht' (did you mean 'width'?)"),
    ("bases: {}", "unknown key 'bases' (did you mean 'base'?)"),
    ("base: [1, 2]", "base must be a mapping"),
    ("grid: {width: []}", "grid: width = [] expands to nothing"),
    ("grid: []", "grid expands to nothing"),
    ("grid: {width: 10}", "grid: width = 10 must be a list"),
    ("grid: [[1, 2]]", "grid[0]: expected a mapping"),
    ("grid: [{width: [10]}, {iterate_noise: [7]}]", "iterate_noise = 7 is not allowed; use one of 0, 1, 2, 3"),
    ("seeds: []", "seeds = [] must be a non-empty list"),
    ("seeds: [1, 1]", "repeats a seed"),
    ("seeds: [-1]", "seeds contains -1; use integers >= 0"),
    ("base: {seed: 4}", "seed is set by the group's `seeds` list"),
    ("base: {iterate_noise_alpha: 2.5}", "iterate_noise_alpha = 2.5 is not allowed; use a number in (0, 2]"),
    ("base: {iterate_noise_alpha: 0.0}", "iterate_noise_alpha = 0.0 is not allowed; use a number in (0, 2]"),
    ("base: {iterate_noise_scale: -1.0}", "iterate_noise_scale = -1.0 is not allowed; use a number >= 0"),
    ("base: {width: 0}", "width = 0 is not allowed; use an integer >= 1"),
    ("base: {width: 10.5}", "width = 10.5 is not an integer"),
    ("base: {width: true}", "width = True is not an integer"),
    ("base: {depth: 1}", "depth = 1 is not allowed; use an integer >= 2"),
    ("base: {batch_size_train: 0}", "batch_size_train = 0 is not allowed"),
    ("base: {eval_freq: 0}", "eval_freq = 0 is not allowed"),
    ("base: {iterations: 0}", "iterations = 0 is not allowed"),
    ("base: {lr: 0.0}", "lr = 0.0 is not allowed; use a number > 0"),
    ("base: {lr: -0.1}", "lr = -0.1 is not allowed; use a number > 0"),
    ("base: {mom: 1.0}", "mom = 1.0 is not allowed; use a number in [0, 1)"),
    ("base: {convergence_accuracy: 0.0}", "convergence_accuracy = 0.0 is not allowed; use a number in (0, 100]"),
    ("base: {convergence_accuracy: 101.0}", "convergence_accuracy = 101.0 is not allowed"),
    ("base: {model: resnet}", "model = 'resnet' is not allowed; use one of fcn, vgg11_wide"),
    ("base: {dataset: imagenet}", "dataset = 'imagenet' is not allowed; use one of digits"),
    ("base: {iterate_noise: 4}", "iterate_noise = 4 is not allowed"),
    ("base: {iterate_noise_filter: yes please}", "iterate_noise_filter = 'yes please' is not true or false"),
    ("base: {iterate_noise_filter: true}", "iterate_noise_filter = True needs model = vgg11_wide"),
    ("base: {model: vgg11_wide, dataset: ecg5000}", "model = vgg11_wide needs 32x32 images"),
    ("base: {iterate_noise: 3, iterate_noise_alpha: 2.0}", "the elliptic noise's mixing law degenerates at alpha = 2"),
    ("timeout: 0", "timeout = 0 is not allowed"),
    ("analysis: {pruning_type: row}", "analysis.pruning_type = 'row' is not allowed; use one of filter, kernel"),
    ("analysis: {criterion: mce}", "analysis: unknown key 'criterion'"),
    ("[1, 2]", "expected a mapping"),
    ("base: {dataset: [mnist}", "not valid YAML"),
]


@pytest.mark.parametrize("text, message", BAD_PARAMS, ids=[m[:40] for _, m in BAD_PARAMS])
def test_bad_params_file(tmp_path, text, message):
    path = tmp_path / "group.yaml"
    path.write_text(textwrap.dedent(text if text.startswith(("base", "[")) else GOOD_BASE + text))
    with pytest.raises(UserError) as err:
        load_group(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_missing_params_file(tmp_path):
    with pytest.raises(UserError, match="no such params file"):
        load_group(tmp_path / "nope.yaml")


BAD_FLAGS = [
    (["--iterate_noise_alpha", "2.5"], "iterate_noise_alpha = 2.5 is not allowed; use a number in (0, 2]"),
    (["--width", "0"], "width = 0 is not allowed"),
    (["--model", "resnet"], "model = 'resnet' is not allowed; use one of fcn, vgg11_wide"),
    (["--dataset", "imagenet"], "dataset = 'imagenet' is not allowed"),
    (["--iterate_noise_filter"], "iterate_noise_filter = True needs model = vgg11_wide"),
    (["--iterate_noise", "3", "--iterate_noise_alpha", "2"], "mixing law degenerates at alpha = 2"),
    (["--lr", "-1"], "lr = -1.0 is not allowed"),
    (["--iterate_noise_scale", "-0.5"], "iterate_noise_scale = -0.5 is not allowed"),
]


@pytest.mark.parametrize("flags, message", BAD_FLAGS, ids=[m[:40] for _, m in BAD_FLAGS])
def test_bad_train_flags_rejected_before_any_compute(tmp_path, capsys, flags, message):
    assert main(["train", "--dataset", "digits", "--save_dir", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("htsgd train: error: command line: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv, message", [
    (["train", "--width", "abc"], "argument --width: invalid int value: 'abc'"),
    (["analyze", "--results_folder", "x", "--pruning_criterion", "foo"], "argument --pruning_criterion: invalid choice: 'foo'"),
])
def test_malformed_flags(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_analyze_missing_folder(tmp_path, capsys):
    assert main(["analyze", "--results_folder", str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_run_reports_every_missing_dataset_before_training(tmp_path, capsys, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    path = tmp_path / "g.yaml"
    path.write_text("base: {iterations: 5}\ngrid: {dataset: [mnist, ecg5000, digits]}\n")
    code = main(["run", str(path), "--results_dir", str(tmp_path / "results"), "--data_dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == 2 and "datasets missing, nothing was run" in err
    assert "- mnist:" in err and "- ecg5000:" in err and "- digits" not in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("section, flags, message", [
    ("slurm: {cluster: cloud}\n", [], "slurm.cluster = 'cloud' is not allowed; use slurm, local, debug"),
    ("slurm: {gpus: 1}\n", [], "slurm.gpus is not an option; allowed: cluster, partition"),
    ("slurm: {pack: 0}\n", [], "slurm.pack = 0 is not allowed; use a whole number"),
    ("", ["--slurm_cluster", "cloud"], "the --slurm flags: slurm.cluster = 'cloud' is not allowed"),
])
def test_bad_slurm_options_rejected_before_anything_is_submitted(tmp_path, capsys, section, flags, message):
    path = tmp_path / "g.yaml"
    path.write_text(GOOD_BASE + section)
    results = tmp_path / "results"
    assert main(["run", str(path), "--results_dir", str(results), "--launcher", "slurm", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("htsgd run: error: ") and message in err and "Traceback" not in err
    assert not results.exists()
