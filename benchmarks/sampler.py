"""Throughput of the alpha-stable sampler against SciPy's, and the cost of one noise step.

    python benchmarks/sampler.py [--device cpu|cuda] [--repeats 5] [--threads N]

Draws 5000 x 784 values (the first weight of the seed's MNIST FCN) with alpha = 1.75, beta = 0,
and times one type-1 and one type-2 noise step on a 784 -> 5000 -> 10 FCN. `measure` returns the
numbers for reuse (e.g. by `make bench`). On a CPU shared with other work, torch's intra-op
threads wait on each other at every operation: compare with --threads 1, and repeat.
"""

import argparse
import statistics
import time

import numpy as np
import torch
from scipy.stats import levy_stable

from htsgd.core.models import build_model
from htsgd.core.noise import IterateNoise, stable

SHAPE = (5000, 784)
ALPHA = 1.75


def median_time(fn, device, repeats: int, warmup: int = 1) -> float:
    """Median of `repeats` timed calls after `warmup` untimed ones, in seconds, waiting for the device each time.

    The warm-up matters for SciPy too: its first levy_stable call costs several times a later one.
    """
    def timed():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    for _ in range(warmup):
        timed()
    return statistics.median(timed() for _ in range(repeats))


def measure(device="cpu", repeats: int = 5, scipy_repeats: int = 3) -> dict:
    """Seconds per 5000x784 draw for torch and SciPy (both warmed up, medians), draws/s, ratio, noise step times."""
    device = torch.device(device)
    draws = SHAPE[0] * SHAPE[1]
    generator = torch.Generator(device=device).manual_seed(0)
    torch_s = median_time(lambda: stable(ALPHA, 0.0, SHAPE, generator=generator, device=device), device, repeats)
    np.random.seed(0)  # the original drew from NumPy's global generator
    scipy_s = median_time(lambda: levy_stable.rvs(ALPHA, 0.0, size=SHAPE), torch.device("cpu"), scipy_repeats)
    model = build_model("fcn", (1, 28, 28), 10, width=SHAPE[0], depth=2).to(device)
    weights = [model.hidden[0].weight]
    steps = {}
    for noise_type in (1, 2):
        step = IterateNoise(weights, noise_type, ALPHA, step_scale=1e-3, generator=generator)
        steps[noise_type] = median_time(step, device, repeats)
    return {"device": str(device), "threads": torch.get_num_threads(), "draws": draws,
            "torch_s": torch_s, "scipy_s": scipy_s,
            "torch_draws_per_s": draws / torch_s, "scipy_draws_per_s": draws / scipy_s,
            "speedup": scipy_s / torch_s, "type1_step_s": steps[1], "type2_step_s": steps[2]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions (the best one counts)")
    parser.add_argument("--threads", type=int, help="torch's intra-op CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    r = measure(args.device, args.repeats)
    print(f"alpha-stable draws, {SHAPE[0]}x{SHAPE[1]}, alpha {ALPHA}, beta 0 ({r['device']}, {r['threads']} threads)")
    print(f"  htsgd.noise.stable      {r['torch_s'] * 1e3:9.1f} ms  {r['torch_draws_per_s']:12.3e} draws/s")
    print(f"  scipy levy_stable.rvs   {r['scipy_s'] * 1e3:9.1f} ms  {r['scipy_draws_per_s']:12.3e} draws/s")
    print(f"  ratio                   {r['speedup']:9.1f}x")
    print(f"noise step on the 784 -> {SHAPE[0]} -> 10 FCN's hidden weight")
    print(f"  type 1                  {r['type1_step_s'] * 1e3:9.2f} ms")
    print(f"  type 2                  {r['type2_step_s'] * 1e3:9.2f} ms")


if __name__ == "__main__":
    main()
