"""`make bench-pipeline`: one group from an empty results folder, with 1 worker and with N, in one run.

Three runs of the same group (default: the demo), each into its own empty folder:
- cold: 1 worker, a fresh kernel started for each notebook when its turn comes (papermill's own
  way, and htsgd's before warm kernels), on the first `--cold_configs` configurations;
- warm: 1 worker keeping one warm kernel for all its notebooks, its namespace reset between them;
- workers: N workers, each with its own warm kernel.
For cold and warm, each configuration's time is split from its executed notebook (papermill
records every cell's duration): imports, data, training (the run's own wall time), the rest of
the train cell (building the model, writing the run folder), figures, and what is outside the
cells (kernel start, papermill reading and writing the notebook). The per-configuration
overhead is the training phase's wall time per configuration minus the training time.
Results: benchmarks/results_pipeline.json and .md. Seconds vary by +-30 % on shared machines:
compare the ratios, measured side by side here.

    python benchmarks/pipeline.py [--params params/demo.yaml] [--workers 2] [--device cpu]
"""

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean, median

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from htsgd.pipeline import local as workers  # noqa: E402
from htsgd.pipeline import run as driver  # noqa: E402
from htsgd.pipeline.params import load_group  # noqa: E402
from htsgd.pipeline.run import run_groups  # noqa: E402
from htsgd.record import names, run_folder  # noqa: E402
from htsgd.record.provenance import device_description  # noqa: E402

TARGETS = {"workers_wall_ratio": 0.6, "overhead_per_config_s": 3.0}
CELLS = {"imports": "imports", "data": "data", "train": "train"}


def timed_run(params: Path, results: Path, n_workers: int, device, fresh_kernels=False) -> dict:
    """Run the group; the wall time of the whole run and of its training phase."""
    phase = {}
    train_all = workers.train_all

    def timing_train_all(*args, **kwargs):
        started = time.perf_counter()
        try:
            return train_all(*args, **kwargs)
        finally:
            phase["train"] = time.perf_counter() - started

    driver.train_all = timing_train_all
    started = time.perf_counter()
    try:
        code = run_groups([params], results_dir=results, device=device, workers=n_workers, command="bench-pipeline",
                          fresh_kernels=fresh_kernels)
    finally:
        driver.train_all = train_all
    if code != 0:
        raise SystemExit(f"the group run failed (exit {code}); see {results}")
    return {"wall_s": time.perf_counter() - started, "training_phase_s": phase["train"]}


def split(group_dir: Path) -> dict:
    """Median seconds per configuration in each part of its notebook, from papermill's cell durations."""
    parts = {k: [] for k in ("imports", "data", "training", "rest of train cell", "figures", "outside cells")}
    for notebook in sorted(group_dir.glob(f"*/{names.NOTEBOOK}")):
        nb = json.loads(notebook.read_text())
        cells = {c.get("id"): c["metadata"].get("papermill", {}).get("duration") or 0.0 for c in nb["cells"]}
        training = run_folder.read_metrics(notebook.parent)["wall_time"]
        order = [c.get("id") for c in nb["cells"]]
        after = order[order.index("train") + 1:]
        parts["imports"].append(cells["imports"])
        parts["data"].append(cells["data"])
        parts["training"].append(training)
        parts["rest of train cell"].append(cells["train"] - training)
        parts["figures"].append(sum(cells[c] for c in after))
        parts["outside cells"].append(nb["metadata"]["papermill"]["duration"] - sum(cells.values()))
    return {k: median(v) for k, v in parts.items()}


def measure(params: Path, n_workers: int, cold_configs: int, device) -> dict:
    group = load_group(params)
    out = {"group": group.name, "configurations": len(group.configs), "device": device_description(device)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cold_ids = list(group.configs)[:cold_configs]
        cold = timed_run(_subset(params, tmp / "cold.yaml", cold_ids), tmp / "cold", 1, device, fresh_kernels=True)
        runs = {"warm": timed_run(params, tmp / "warm", 1, device),
                "workers": timed_run(params, tmp / "workers", n_workers, device)}
        out["cold"] = {**cold, "configurations": len(cold_ids), "split_s": split(tmp / "cold" / "cold")}
        out["warm"] = {**runs["warm"], "split_s": split(tmp / "warm" / group.name)}
        out["workers"] = {**runs["workers"], "workers": n_workers}
        training = mean(run_folder.read_metrics(p.parent)["wall_time"]
                        for p in (tmp / "warm" / group.name).glob(f"*/{names.METRICS}"))
        cold_training = mean(run_folder.read_metrics(p.parent)["wall_time"]
                             for p in (tmp / "cold" / "cold").glob(f"*/{names.METRICS}"))
    out["cold"]["overhead_per_config_s"] = out["cold"]["training_phase_s"] / len(cold_ids) - cold_training
    out["warm"]["overhead_per_config_s"] = out["warm"]["training_phase_s"] / len(group.configs) - training
    out["workers_wall_ratio"] = out["workers"]["wall_s"] / out["warm"]["wall_s"]
    return out


def _subset(params: Path, path: Path, ids: list) -> Path:
    """A copy of the group file whose grid is just `ids` (each with its own full configuration)."""
    group = load_group(params)
    grid = [{k: [v] for k, v in group.configs[i].to_dict().items() if k != "seed"} for i in ids]
    grid = list({json.dumps(g, sort_keys=True): g for g in grid}.values())  # each setting once
    seeds = sorted({group.configs[i].seed for i in ids})
    path.write_text(yaml.safe_dump({"timeout": group.timeout, "grid": grid, "seeds": seeds, "analysis": group.analysis}))
    return path


def markdown(r: dict) -> str:
    met = {"workers_wall_ratio": r["workers_wall_ratio"] <= TARGETS["workers_wall_ratio"],
           "overhead_per_config_s": r["warm"]["overhead_per_config_s"] <= TARGETS["overhead_per_config_s"]}
    lines = [f"# Benchmark: the {r['group']} group from an empty results folder", "",
             f"Machine: {r['device']}, Python {platform.python_version()}. Seconds vary by about 30 % between runs "
             "on shared machines; the ratios are measured side by side in one run.", "",
             "| run | configurations | wall time (s) | training phase (s) | overhead per configuration (s) |",
             "| --- | --- | --- | --- | --- |",
             f"| cold kernels, 1 worker (before) | {r['cold']['configurations']} | {r['cold']['wall_s']:.1f} | "
             f"{r['cold']['training_phase_s']:.1f} | {r['cold']['overhead_per_config_s']:.2f} |",
             f"| warm kernels, 1 worker | {r['configurations']} | {r['warm']['wall_s']:.1f} | "
             f"{r['warm']['training_phase_s']:.1f} | {r['warm']['overhead_per_config_s']:.2f} |",
             f"| warm kernels, {r['workers']['workers']} workers | {r['configurations']} | {r['workers']['wall_s']:.1f} | "
             f"{r['workers']['training_phase_s']:.1f} | |", "",
             "Where one configuration's time goes (median seconds, from the executed notebooks):", "",
             "| part | cold kernels (before) | warm kernels |", "| --- | --- | --- |"]
    lines += [f"| {part} | {r['cold']['split_s'][part]:.2f} | {r['warm']['split_s'][part]:.2f} |" for part in r["warm"]["split_s"]]
    lines += ["", "A warm kernel was started and warmed up once (imports, torch's optimizer set-up) before the "
              "first configuration, so the imports cell finds them done.", "",
              "| target | value | goal | met |", "| --- | --- | --- | --- |",
              f"| {r['workers']['workers']} workers' wall time / 1 worker's | {r['workers_wall_ratio']:.2f} | "
              f"<= {TARGETS['workers_wall_ratio']} | {'yes' if met['workers_wall_ratio'] else 'NO'} |",
              f"| overhead per configuration, 1 worker (s) | {r['warm']['overhead_per_config_s']:.2f} | "
              f"<= {TARGETS['overhead_per_config_s']} | {'yes' if met['overhead_per_config_s'] else 'NO'} |"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "demo.yaml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cold_configs", type=int, default=8, help="configurations timed with cold kernels")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    args = parser.parse_args()
    result = measure(args.params, args.workers, args.cold_configs, args.device)
    suffix = "" if (args.device or "cpu") == "cpu" else "_" + args.device.split(":")[0]
    (args.out / f"results_pipeline{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.out / f"results_pipeline{suffix}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
