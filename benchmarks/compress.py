"""`make bench-compress`: one run's whole compressor sweep, one compressed copy per fraction against `accuracy_sweep`.

The analysis takes the test accuracy of every run compressed by each compressor at 51 fractions
(`run_analysis.SWEEP_FRACTIONS`). Timed side by side, on the same weights of a 784 -> 4000 -> 10 FCN (the
widest Fashion-MNIST width of the width trend) and its 10,000 test inputs:
- old: `compress_sweep` builds a compressed copy at each fraction and `evaluate` runs it, a forward pass each;
- new: `sweep.accuracy_sweep`, which builds every fraction of a one-hidden-layer FCN on the one before;
- floor: one forward pass over the test set (`evaluate`), what any sweep needs at least.
The weights are trained for 300 steps on Fashion-MNIST (a 5,000-image training subset) when its files are
under --data; otherwise they are random, on random inputs. Both ways' accuracies are compared at every
fraction: they may differ only by examples the sweep counts as near-ties (the bench fails otherwise). Results:
benchmarks/results_compress.json and .md. On a CPU shared with other work, torch's intra-op threads wait on
each other at every operation, which costs the sweep's many small operations most: compare with --threads 1.

    python benchmarks/compress.py [--width 4000] [--repeats 3] [--threads N] [--data data]
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler import median_time  # noqa: E402

from htsgd.analysis.run_analysis import SWEEP_FRACTIONS  # noqa: E402
from htsgd.core.compress import COMPRESSORS, compress_sweep  # noqa: E402
from htsgd.core.config import make_config  # noqa: E402
from htsgd.core.data import DataUnavailable, load  # noqa: E402
from htsgd.core.evaluate import evaluate  # noqa: E402
from htsgd.core.models import build_model  # noqa: E402
from htsgd.core.sweep import accuracy_sweep  # noqa: E402
from htsgd.core.train import train  # noqa: E402
from htsgd.record import storage  # noqa: E402

TEST_IMAGES = 10_000
TRAIN_STEPS = 300


def network(width: int, data_dir) -> tuple:
    """(model, test inputs, test labels, how the weights were made)."""
    try:
        data = load("fashion-mnist", data_dir, train_size=5000)
    except DataUnavailable:
        torch.manual_seed(0)
        model = build_model("fcn", (1, 28, 28), 10, width, 2).eval()
        return model, torch.randn(TEST_IMAGES, 1, 28, 28), torch.randint(0, 10, (TEST_IMAGES,)), "random"
    config = make_config({"dataset": "fashion-mnist", "width": width, "lr": 0.1, "batch_size_train": 100,
                          "eval_freq": TRAIN_STEPS, "iterations": TRAIN_STEPS, "convergence_accuracy": 100.0,
                          "train_size": 5000})
    result = train(config, data, device="cpu", progress=False)
    weights = f"trained {TRAIN_STEPS} steps on Fashion-MNIST (test accuracy {result['metrics']['test_acc']:.2f} %)"
    return result["model"].eval(), data.test_x, data.test_y, weights


def measure(width: int, repeats: int, data_dir) -> dict:
    cpu = torch.device("cpu")
    model, x, y, weights = network(width, data_dir)
    print(f"weights: {weights}", flush=True)
    old, new = {}, {}

    def old_sweep(compressor):
        old[compressor] = [evaluate(c.model, x, y)[1] for c in compress_sweep(model, compressor, SWEEP_FRACTIONS)]

    def new_sweep(compressor):
        new[compressor] = accuracy_sweep(model, compressor, SWEEP_FRACTIONS, x, y)

    floor = median_time(lambda: evaluate(model, x, y), cpu, repeats)
    results = {"width": width, "test_images": len(y), "fractions": len(SWEEP_FRACTIONS),
               "threads": torch.get_num_threads(), "weights": weights, "floor_s": floor, "compressors": {}}
    for compressor in COMPRESSORS:
        old_s = median_time(lambda: old_sweep(compressor), cpu, 1, warmup=0)  # about 51 forward passes
        new_s = median_time(lambda: new_sweep(compressor), cpu, repeats)
        differing = [round(abs(p["test_acc"] - a) * len(y) / 100) for p, a in zip(new[compressor], old[compressor])]
        results["compressors"][compressor] = {
            "old_s": old_s, "new_s": new_s, "speedup": old_s / new_s, "ties": sum(p["ties"] for p in new[compressor]),
            "differing_examples": sum(differing),
            "beyond_ties": sum(max(0, d - p["ties"]) for d, p in zip(differing, new[compressor]))}
        print(f"{compressor}: {results['compressors'][compressor]}", flush=True)
    parts = results["compressors"].values()
    results.update({key: sum(c[key] for c in parts) for key in ("old_s", "new_s", "ties", "differing_examples",
                                                                "beyond_ties")})
    results.update(speedup=results["old_s"] / results["new_s"], new_in_floors=results["new_s"] / floor,
                   old_in_floors=results["old_s"] / floor)
    return results


def markdown(r) -> str:
    lines = [f"# Benchmark: one run's compressor sweep, {r['fractions']} fractions per compressor, 784 -> {r['width']} "
             f"-> 10 FCN, {r['test_images']:,} test images ({r['threads']} threads)", "",
             f"Weights: {r['weights']}. Floor (one forward pass over the test set): {r['floor_s']:.2f} s.", "",
             "| compressor | old: copy + evaluate per fraction s | new: accuracy_sweep s | speed-up "
             "| near-ties (example-fractions) | examples whose prediction differs |", "|---|---|---|---|---|---|"]
    for name, c in r["compressors"].items():
        lines.append(f"| {name} | {c['old_s']:.2f} | {c['new_s']:.2f} | {c['speedup']:.1f}x | {c['ties']} "
                     f"| {c['differing_examples']} |")
    lines.append(f"| **whole sweep** | {r['old_s']:.2f} ({r['old_in_floors']:.0f} floors) | {r['new_s']:.2f} "
                 f"({r['new_in_floors']:.1f} floors) | {r['speedup']:.1f}x | {r['ties']} | {r['differing_examples']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of the floor and the new sweep "
                                                                "(median reported; the old sweep is timed once)")
    parser.add_argument("--threads", type=int, help="torch's intra-op CPU threads (default: torch's choice)")
    parser.add_argument("--data", default="data", help="folder holding FashionMNIST/ (else random weights)")
    parser.add_argument("--out", default=Path(__file__).resolve().parent, type=Path)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = measure(args.width, args.repeats, args.data)
    storage.write_json(args.out / "results_compress.json", results)
    table = markdown(results)
    storage.write_text(args.out / "results_compress.md", table)
    print(table)
    if results["beyond_ties"]:
        print(f"{results['beyond_ties']} accuracy differences are not explained by near-ties: a bug in the sweep")
    return 1 if results["beyond_ties"] else 0


if __name__ == "__main__":
    sys.exit(main())
