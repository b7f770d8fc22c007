"""`make bench`: htsgd against a re-creation of the original approach, side by side in one run.

For each configuration three things are timed on the same model shapes, data and seed:
- baseline: the original's way - a DataLoader with per-sample ToTensor/Normalize, SciPy
  `levy_stable` noise drawn on the host and copied to the device every step, evaluation
  through the same loaders;
- htsgd: the package's own training step, noise and evaluation on device-resident data;
- floor: the step's matrix products alone, on preallocated tensors.
Results go to benchmarks/results.json (stable keys) and benchmarks/results.md.

    python benchmarks/bench.py [--device cuda] [--out benchmarks]
"""

import argparse
import json
import math
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import levy_stable
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler import measure as measure_sampler, median_time  # noqa: E402

from htsgd.record import storage  # noqa: E402
from htsgd.core.config import make_config  # noqa: E402
from htsgd.core.data import DataUnavailable, load  # noqa: E402
from htsgd.core.datasets import DATASETS  # noqa: E402
from htsgd.core.evaluate import evaluate  # noqa: E402
from htsgd.core.models import build_model, hidden_layers  # noqa: E402
from htsgd.core.noise import make_noise  # noqa: E402
from htsgd.core.train import epoch_order, sgd_step  # noqa: E402

TARGETS_CPU = {"step_vs_floor": 1.25, "speedup_type1": 2.0, "speedup_type2": 4.0, "eval_speedup": 4.0, "sampler_speedup": 20.0}
TARGETS_GPU = {"step_vs_floor": 1.5, "noise_share": 0.05}
CONFIGS = {  # name: (dataset shape, width, batch, lr, noise type, sigma)
    "mnist_type1": ("mnist", 5000, 5000, 0.01, 1, 0.003),
    "mnist_type2": ("mnist", 5000, 5000, 0.01, 2, 0.003),
    "ecg5000_type1": ("ecg5000", 2000, 100, 0.01, 1, 0.003),
}
ALPHA = 1.75


def mnist_like(data_dir, transform):
    """Fashion-MNIST through torchvision's own class (PIL images, per-sample transform), as the original
    read MNIST; synthetic images of the same shape when the files are absent."""
    import torchvision.datasets as tvd

    try:
        load("fashion-mnist", data_dir)  # unpacks Debian's files when present, or downloads
        splits = [tvd.FashionMNIST(str(data_dir), train=t, transform=transform) for t in (True, False)]
        return splits, "Fashion-MNIST (real idx files)"
    except DataUnavailable:
        fake = [tvd.FakeData(n, (1, 28, 28), 10, transform=transform, random_offset=i) for i, n in enumerate((60000, 10000))]
        return fake, "synthetic 28x28 images (Fashion-MNIST not found)"


def build_case(name, device, data_dir):
    dataset, width, batch, lr, noise_type, sigma = CONFIGS[name]
    if dataset == "mnist":
        from torchvision import transforms

        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(*DATASETS["fashion-mnist"].normalization)])
        splits, source = mnist_like(data_dir, transform)
        loaders = [DataLoader(split, batch_size=batch, shuffle=train) for split, train in zip(splits, (True, False))]
        if source.startswith("Fashion"):  # htsgd's own loader: read once, normalised once
            data = load("fashion-mnist", data_dir)
            tensors = [(data.train_x, data.train_y), (data.test_x, data.test_y)]
        else:
            samples = [[split[i] for i in range(len(split))] for split in splits]
            tensors = [(torch.stack([x for x, _ in s]), torch.tensor([y for _, y in s])) for s in samples]
        input_shape = (1, 28, 28)
    else:
        rng = np.random.default_rng(0)
        splits = [(rng.normal(size=(n, 140)).astype(np.float32), rng.integers(0, 2, n)) for n in (500, 4500)]
        source = "synthetic ECG5000-shaped series (500 train, 4500 test, 140 values)"
        tensors = [(torch.from_numpy(x), torch.from_numpy(y).long()) for x, y in splits]
        loaders = [DataLoader(TensorDataset(*t), batch_size=batch, shuffle=train) for t, train in zip(tensors, (True, False))]
        input_shape = (140,)
    config = make_config(dict(dataset="digits", width=width, batch_size_train=batch, lr=lr, iterate_noise=noise_type,
                              iterate_noise_scale=sigma, iterate_noise_alpha=ALPHA, seed=1))
    tensors = [(x.to(device), y.to(device)) for x, y in tensors]
    return config, input_shape, loaders, tensors, source


def fresh_model(config, input_shape, device):
    torch.manual_seed(config.seed)
    model = build_model("fcn", input_shape, 10 if input_shape != (140,) else 2, config.width).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=config.lr)


def baseline_timings(config, input_shape, loaders, device, repeats):
    """The original approach: loader batches, SciPy noise on the host copied over, loader evaluation."""
    model, optimizer = fresh_model(config, input_shape, device)
    weights = [layer.weight for _, layer in hidden_layers(model)]
    step_scale = config.iterate_noise_scale * config.lr ** (1 / config.iterate_noise_alpha)
    np.random.seed(1)  # the original drew from NumPy's global generator
    batches = iter(loaders[0])

    def next_batch():
        nonlocal batches
        try:
            return next(batches)
        except StopIteration:
            batches = iter(loaders[0])
            return next(batches)

    def add_scipy_noise():
        with torch.no_grad():
            for w in weights:
                shape = (w.shape[0],) if config.iterate_noise == 1 else tuple(w.shape)
                draw = levy_stable.rvs(config.iterate_noise_alpha, 0.0, size=shape)
                noise = torch.from_numpy(draw).float().to(device) * step_scale
                w.add_(noise.unsqueeze(1) if config.iterate_noise == 1 else noise)

    def step():
        x, y = next_batch()
        sgd_step(model, optimizer, x.to(device), y.to(device))
        add_scipy_noise()

    def evaluate_through_loaders():
        with torch.no_grad():
            for loader in loaders:
                loss, correct = 0.0, 0
                for x, y in DataLoader(loader.dataset, batch_size=loader.batch_size):
                    x, y = x.to(device), y.to(device)
                    logits = model(x)
                    loss += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
                    correct += logits.argmax(1).eq(y).sum().item()

    return {"step": median_time(step, device, repeats), "noise": median_time(add_scipy_noise, device, repeats, warmup=1),
            "eval": median_time(evaluate_through_loaders, device, 1, warmup=1)}


def htsgd_timings(config, input_shape, tensors, device, repeats):
    """The package's own step, noise hook and evaluation on device-resident tensors."""
    model, optimizer = fresh_model(config, input_shape, device)
    generator = torch.Generator(device=device).manual_seed(1)
    add_noise = make_noise(config, model, generator)
    (train_x, train_y), (test_x, test_y) = tensors
    order = epoch_order(0, len(train_y), config.seed, device).split(config.batch_size_train)
    position = 0

    def step():
        nonlocal position
        index = order[position % len(order)]
        position += 1
        sgd_step(model, optimizer, train_x[index], train_y[index])
        add_noise()

    def evaluate_all():
        evaluate(model, train_x, train_y)
        evaluate(model, test_x, test_y)

    return {"step": median_time(step, device, repeats), "noise": median_time(add_noise, device, repeats),
            "eval": median_time(evaluate_all, device, 3, warmup=1)}


def floor_timing(config, input_shape, num_classes, device, repeats) -> float:
    """The step's matrix products alone: forward through both layers, both weight gradients, the hidden gradient."""
    b, d, n = config.batch_size_train, math.prod(input_shape), config.width
    x, w1, w2 = (torch.randn(*s, device=device) for s in ((b, d), (n, d), (num_classes, n)))
    h, g = torch.randn(b, n, device=device), torch.randn(b, num_classes, device=device)

    def products():
        torch.mm(x, w1.t())       # hidden pre-activations
        torch.mm(h, w2.t())       # logits
        torch.mm(g.t(), h)        # output weight gradient
        torch.mm(g, w2)           # hidden gradient
        torch.mm(h.t(), x)        # first-layer weight gradient (no input gradient needed)

    return median_time(products, device, repeats)


def machine(device) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": torch.get_num_threads(), "torch": torch.__version__, "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}


def run(device, data_dir, repeats) -> dict:
    results = {"machine": machine(device), "configs": {}}
    for name in CONFIGS:
        print(f"{name}: ...", flush=True)
        config, input_shape, loaders, tensors, source = build_case(name, device, data_dir)
        num_classes = 2 if input_shape == (140,) else 10
        floor = floor_timing(config, input_shape, num_classes, device, repeats)
        ours = htsgd_timings(config, input_shape, tensors, device, repeats)
        base = baseline_timings(config, input_shape, loaders, device, max(3, repeats // 3))
        results["configs"][name] = {
            "data": source, "width": config.width, "batch": config.batch_size_train, "noise_type": config.iterate_noise,
            "floor_step_s": floor, "htsgd_step_s": ours["step"], "baseline_step_s": base["step"],
            "htsgd_noise_s": ours["noise"], "baseline_noise_s": base["noise"],
            "htsgd_eval_s": ours["eval"], "baseline_eval_s": base["eval"],
            "htsgd_step_vs_floor": ours["step"] / floor, "baseline_step_vs_floor": base["step"] / floor,
            "step_speedup": base["step"] / ours["step"], "eval_speedup": base["eval"] / ours["eval"],
            "noise_share_of_step": ours["noise"] / ours["step"],
        }
        print(f"  {json.dumps(results['configs'][name])}", flush=True)
    results["sampler"] = measure_sampler(str(device))
    results["targets"] = check_targets(results, device)
    return results


def check_targets(results, device) -> dict:
    c = results["configs"]
    if device.type == "cuda":
        return {
            **{f"{k}_step_vs_floor": {"value": v["htsgd_step_vs_floor"], "target": f"<= {TARGETS_GPU['step_vs_floor']}",
                                      "met": v["htsgd_step_vs_floor"] <= TARGETS_GPU["step_vs_floor"]} for k, v in c.items()},
            **{f"{k}_noise_share": {"value": v["noise_share_of_step"], "target": f"<= {TARGETS_GPU['noise_share']}",
                                    "met": v["noise_share_of_step"] <= TARGETS_GPU["noise_share"]} for k, v in c.items()},
        }
    t = TARGETS_CPU
    checks = {f"{k}_step_vs_floor": (v["htsgd_step_vs_floor"], "<=", t["step_vs_floor"]) for k, v in c.items()
              if k.startswith("mnist")}
    checks["mnist_type1_step_speedup"] = (c["mnist_type1"]["step_speedup"], ">=", t["speedup_type1"])
    checks["mnist_type2_step_speedup"] = (c["mnist_type2"]["step_speedup"], ">=", t["speedup_type2"])
    checks["ecg5000_type1_step_speedup"] = (c["ecg5000_type1"]["step_speedup"], ">=", t["speedup_type1"])
    for k, v in c.items():
        checks[f"{k}_eval_speedup"] = (v["eval_speedup"], ">=", t["eval_speedup"])
    checks["sampler_speedup"] = (results["sampler"]["speedup"], ">=", t["sampler_speedup"])
    return {k: {"value": value, "target": f"{op} {bound}", "met": value <= bound if op == "<=" else value >= bound}
            for k, (value, op, bound) in checks.items()}


def markdown(results) -> str:
    m = results["machine"]
    lines = ["# Benchmark: htsgd against the original approach", "",
             f"Machine: {m['cpu']}, {m['cores']} threads, torch {m['torch']}, device {m['device']}"
             + (f" ({m['gpu']})" if m["gpu"] else ""), "",
             "| config | data | floor s/step | htsgd s/step | baseline s/step | htsgd / floor | speed-up | "
             "htsgd eval s | baseline eval s | eval speed-up | noise share of step |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in results["configs"].items():
        lines.append(f"| {name} | {c['data']} | {c['floor_step_s']:.4f} | {c['htsgd_step_s']:.4f} | {c['baseline_step_s']:.4f} "
                     f"| {c['htsgd_step_vs_floor']:.2f}x | {c['step_speedup']:.1f}x | {c['htsgd_eval_s']:.3f} "
                     f"| {c['baseline_eval_s']:.3f} | {c['eval_speedup']:.1f}x | {100 * c['noise_share_of_step']:.1f} % |")
    s = results["sampler"]
    lines += ["", f"Sampler, 5000x784 draws (alpha 1.75, beta 0): htsgd {s['torch_draws_per_s']:.3g} draws/s, "
              f"SciPy {s['scipy_draws_per_s']:.3g} draws/s: {s['speedup']:.0f}x", "", "| target | value | goal | met |", "|---|---|---|---|"]
    for name, t in results["targets"].items():
        lines.append(f"| {name} | {t['value']:.3g} | {t['target']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data_dir", default="data", type=Path)
    parser.add_argument("--out", default=Path(__file__).resolve().parent, type=Path)
    parser.add_argument("--repeats", type=int, default=9, help="timed repetitions per figure (median reported)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    results = run(device, args.data_dir, args.repeats)
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    storage.write_json(args.out / f"results{suffix}.json", results)
    table = markdown(results)
    storage.write_text(args.out / f"results{suffix}.md", table)
    print(table)
    return 0 if all(t["met"] for t in results["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
