"""`make bench-compress`: one run's compressor sweep with each layer decomposed once, against once per fraction.

The analysis sweeps every run at 51 fractions per compressor (`analyze.SWEEP_FRACTIONS`). Timed side
by side on a 784 -> 4000 -> 10 FCN (the widest Fashion-MNIST width of the width trend), random
weights, for each compressor:
- per fraction: `compress_model` at each fraction, which sorts or decomposes the layer each time
  (how the sweep ran before `compress_sweep`);
- once: `compress_sweep` over the same fractions, which sorts or decomposes each layer once;
- evaluation: the sweep's 51 evaluations on 10,000 test-shaped inputs, the part neither changes.
Both ways give the same weights (tests/test_compress.py). Results: benchmarks/results_compress.json
and .md.

    python benchmarks/compress.py [--width 4000] [--repeats 3]
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler import median_time  # noqa: E402

from htsgd.analysis.run_analysis import SWEEP_FRACTIONS  # noqa: E402
from htsgd.core.compress import COMPRESSORS, compress_model, compress_sweep  # noqa: E402
from htsgd.core.evaluate import evaluate  # noqa: E402
from htsgd.core.models import build_model  # noqa: E402
from htsgd.record import storage  # noqa: E402

TEST_IMAGES = 10_000


def measure(width: int, repeats: int) -> dict:
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model = build_model("fcn", (1, 28, 28), 10, width, 2).eval()
    x, y = torch.randn(TEST_IMAGES, 1, 28, 28), torch.randint(0, 10, (TEST_IMAGES,))
    results = {"width": width, "fractions": len(SWEEP_FRACTIONS), "threads": torch.get_num_threads(), "compressors": {}}
    for compressor in COMPRESSORS:
        per_fraction = median_time(lambda: [compress_model(model, compressor, f) for f in SWEEP_FRACTIONS], cpu, repeats)
        once = median_time(lambda: list(compress_sweep(model, compressor, SWEEP_FRACTIONS)), cpu, repeats)
        compressed = [c.model for c in compress_sweep(model, compressor, SWEEP_FRACTIONS)]
        evaluation = median_time(lambda: [evaluate(m, x, y) for m in compressed], cpu, repeats)
        results["compressors"][compressor] = {
            "per_fraction_s": per_fraction, "once_s": once, "evaluation_s": evaluation,
            "speedup": per_fraction / once, "sweep_speedup": (per_fraction + evaluation) / (once + evaluation)}
        print(f"{compressor}: {results['compressors'][compressor]}", flush=True)
    return results


def markdown(results) -> str:
    lines = [f"# Benchmark: one run's compressor sweep, {results['fractions']} fractions, 784 -> {results['width']} -> 10 "
             f"FCN ({results['threads']} threads)", "",
             "| compressor | decomposed per fraction s | decomposed once s | speed-up | 51 evaluations s "
             "| sweep with evaluations: speed-up |", "|---|---|---|---|---|---|"]
    for name, c in results["compressors"].items():
        lines.append(f"| {name} | {c['per_fraction_s']:.2f} | {c['once_s']:.2f} | {c['speedup']:.1f}x "
                     f"| {c['evaluation_s']:.2f} | {c['sweep_speedup']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per figure (median reported)")
    parser.add_argument("--out", default=Path(__file__).resolve().parent, type=Path)
    args = parser.parse_args(argv)
    results = measure(args.width, args.repeats)
    storage.write_json(args.out / "results_compress.json", results)
    table = markdown(results)
    storage.write_text(args.out / "results_compress.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
