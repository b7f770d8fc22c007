"""`htsgd` on the command line: train, analyze, data, run, report, status and site.

`htsgd train` takes the original `main.py` flags under the same names, so the authors'
example command works with `python main.py` replaced by `htsgd train`.
"""

import argparse
import errno
import sys
from contextlib import ExitStack
from dataclasses import fields
from pathlib import Path

from .core.config import HELP, PRUNING_TYPES, TrainConfig, make_config
from .errors import UserError
from .pipeline.arguments import check_device, check_folder
from .pipeline.params import LARGE_GRID, SLURM_OPTIONS
from .record.names import FINDINGS_END, FINDINGS_START

# What the system says when the files a command needs cannot be had, and what to do about each.
MACHINE_SAYS_NO = {
    errno.ENOSPC: "free space on that disk", errno.EDQUOT: "free space within your quota",
    errno.EROFS: "give a folder on a writable disk", errno.EACCES: "get permission to read and write there",
    errno.EPERM: "get permission to read and write there",
    errno.EISDIR: "move aside the folder that stands where htsgd keeps a file",
    errno.ENOTDIR: "move aside the file that stands where htsgd keeps a folder",
}


def _add_train_flags(parser):
    for f in fields(TrainConfig):
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        if kind == "bool":
            parser.add_argument(f"--{f.name}", action="store_true", help=HELP[f.name])
        else:
            parser.add_argument(f"--{f.name}", type={"int": int, "float": float, "str": str}[kind],
                                default=f.default, help=f"{HELP[f.name]} (default: {f.default})")
    parser.add_argument("--save_dir", default=None,
                        help="folder for this run's outputs (default: a new folder under results/train/)")
    parser.add_argument("--data_dir", default="data", help="where datasets live or are downloaded to (default: data)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run in --save_dir (only a folder that holds exactly one htsgd run)")
    parser.add_argument("--checkpoint_every", type=int, default=0,
                        help="save a resumable checkpoint every k steps (default 0: never); changes no result")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


def _add_analyze_flags(parser):
    parser.add_argument("--results_folder", required=True, help="folder whose run folders are analysed")
    parser.add_argument("--pruning_criterion", choices=["mce", "parameter_ratio"], default="mce",
                        help="mce: prune smallest columns up to a share 0.1 of the norm; parameter_ratio: a fixed share of columns")
    parser.add_argument("--compression_error_metric", choices=["fro_squared", "frob"], default="fro_squared",
                        help="removed share measured in squared (default) or plain Frobenius norm")
    parser.add_argument("--ignore_last_layer", action="store_true", help="leave the output layer out of the pruning ratio (as in the paper)")
    # PRUNING_TYPES[0] is core.prune.DEFAULT_PRUNING_TYPE, read here without importing torch.
    parser.add_argument("--pruning_type", choices=PRUNING_TYPES, default=PRUNING_TYPES[0],
                        help=f"convolutions: one column per output filter or per (out, in) kernel (default: "
                             f"{PRUNING_TYPES[0]}, as in the paper and every group; the original defaulted to kernel)")
    parser.add_argument("--data_dir", default="data", help="where datasets live (default: data)")
    parser.add_argument("--device", default=None, help="default: cuda when available")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="htsgd", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train_flags(commands.add_parser("train", help="train one configuration (the original main.py)"))
    _add_analyze_flags(commands.add_parser("analyze", help="prune every finished run in a folder (the original analyze.py)"))
    data = commands.add_parser("data", help="prepare a dataset that cannot be downloaded automatically")
    data.add_argument("dataset", choices=["ecg5000"])
    data.add_argument("--from", dest="source", required=True, type=Path,
                      help="folder with the UCR archive's ECG5000_TRAIN and ECG5000_TEST (.tsv, .txt or .arff); "
                           "labels become binary: normal heartbeat (UCR class 1) -> 0, the four abnormal classes -> 1")
    data.add_argument("--data_dir", default="data", type=Path, help="writes <data_dir>/ECG5000/{X,y}_{train,test}.npy")
    run = commands.add_parser("run", help="execute experiment groups: train notebooks, analysis and report")
    run.add_argument("params", nargs="+", type=Path, help="params/<group>.yaml files")
    run.add_argument("--results_dir", default="results", type=Path, help="writes <results_dir>/<group>/ (default: results)")
    run.add_argument("--data_dir", default="data", type=Path, help="where datasets live or are downloaded to (default: data)")
    run.add_argument("--device", default=None, help="default: cuda when available")
    run.add_argument("--retrain_stale", action="store_true",
                     help="retrain configurations whose folders hold runs trained with other flags "
                          "(the old folders are moved to <results_dir>/<group>.superseded/)")
    run.add_argument("--retrain_damaged", action="store_true",
                     help="retrain configurations with a damaged record file (the old folders are moved to "
                          "<results_dir>/<group>.superseded/)")
    run.add_argument("--workers", type=int, default=1,
                     help="configurations trained at once on this machine (spread over the visible GPUs, or sharing "
                          "the CPU cores); default 1")
    run.add_argument("--fresh_kernels", action="store_true",
                     help="a new Jupyter kernel for every notebook (slower); by default each worker reuses one warm "
                          "kernel, its namespace emptied between notebooks")
    run.add_argument("--launcher", choices=["local", "slurm"], default=None,
                     help="where to train: by default here, except what a Slurm job was given (collected, never "
                          "retrained); local: here, retraining what a job left without a result; slurm: submit a job "
                          "array through submitit and return")
    for key, (kind, default, meaning) in SLURM_OPTIONS.items():
        if kind is list:
            run.add_argument(f"--slurm_{key}", action="append", metavar="LINE",
                             help=f"{meaning} (repeatable; default: the params file's slurm.{key})")
        else:
            run.add_argument(f"--slurm_{key}", type=kind, help=f"{meaning} (default: the params file's slurm.{key}, else {default})")
    status = commands.add_parser("status", help="every configuration's state, read from the results folder")
    status.add_argument("params", type=Path, help="params/<group>.yaml")
    status.add_argument("--results_dir", default="results", type=Path)
    report = commands.add_parser("report", help="rerun a group's report notebook over its existing results")
    report.add_argument("params", type=Path, help="params/<group>.yaml")
    for sub in (run, status, report):
        sub.add_argument("--large_grid", action="store_true",
                         help=f"allow a grid of more than {LARGE_GRID} configurations (refused without it: so many "
                              "take minutes and gigabytes to plan)")
    report.add_argument("--results_dir", default="results", type=Path)
    findings = commands.add_parser("findings", help="write results/FINDINGS.md from every reported group (htsgd run "
                                                    "and htsgd report do it too), and its summary into a README")
    findings.add_argument("--results_dir", default="results", type=Path, help="reads every reported group in it")
    findings.add_argument("--readme", default=None, type=Path,
                          help=f"also replace what lies between the README's {FINDINGS_START} and {FINDINGS_END}")
    site = commands.add_parser("site", help="render every group's record as static HTML pages, readable without Jupyter")
    site.add_argument("--results_dir", default="results", type=Path, help="reads every group folder in it (default: results)")
    site.add_argument("--out", default=None, type=Path, help="writes the pages there (default: <results_dir>/site)")
    site.add_argument("--params_dir", default="params", type=Path,
                      help="where <group>.yaml gives each group's description (default: params)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for flag in ("results_dir", "save_dir", "data_dir", "out"):
            if getattr(args, flag, None) is not None:
                check_folder(getattr(args, flag), f"--{flag}")
        check_device(getattr(args, "device", None))
        if args.command == "train":
            train(args)
        elif args.command == "analyze":
            return analyze(args)
        elif args.command == "run":
            from .pipeline.run import run_groups
            if args.workers < 1:
                raise UserError(f"--workers {args.workers}: use 1 or more")
            slurm = {k[len("slurm_"):]: v for k, v in vars(args).items() if k.startswith("slurm_") and v is not None}
            return run_groups(args.params, args.results_dir, args.data_dir, args.device, retrain_stale=args.retrain_stale,
                              retrain_damaged=args.retrain_damaged, workers=args.workers, launcher=args.launcher,
                              slurm_options=slurm, fresh_kernels=args.fresh_kernels, large_grid=args.large_grid)
        elif args.command == "status":
            from .pipeline.status import status_group
            return status_group(args.params, args.results_dir, args.large_grid)
        elif args.command == "report":
            from .pipeline.run import report_group
            return report_group(args.params, args.results_dir, large_grid=args.large_grid)
        elif args.command == "findings":
            from .report.findings import findings_command
            findings_command(args.results_dir, args.readme)
        elif args.command == "site":
            from .reader.site import site_command
            return site_command(args.results_dir, args.out or args.results_dir / "site", args.params_dir)
        elif args.command == "data":
            from .core.data import prepare_ecg5000
            print(f"wrote {prepare_ecg5000(args.source, args.data_dir)}")
    except UserError as err:
        print(f"htsgd {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in MACHINE_SAYS_NO:
            raise
        where = err.filename or f"writing under {getattr(args, 'results_dir', None) or getattr(args, 'save_dir', None)}"
        print(f"htsgd {args.command}: error: {where}: {err.strerror}. Nothing already written is lost: "
              f"{MACHINE_SAYS_NO[err.errno]}, then run the same command again; it goes on where it stopped",
              file=sys.stderr)
        return 1
    return 0


def analyze(args) -> int:
    """`htsgd analyze`: the flags of the original analyze.py; prints a summary, the CSV's path, and what failed."""
    import pandas as pd

    from .analysis.group_analysis import AnalysisError, analyze_folder, results_path, summary_text

    try:
        table = analyze_folder(args.results_folder, args.pruning_criterion, args.compression_error_metric,
                               args.ignore_last_layer, args.pruning_type, args.data_dir, args.device)
        failed = None
    except AnalysisError as err:
        table, failed = pd.read_csv(results_path(args.results_folder, args.pruning_criterion,
                                                 args.compression_error_metric, args.pruning_type)), err
    print(summary_text(table))
    scope = "output layer excluded" if args.ignore_last_layer else "output layer included"
    path = results_path(args.results_folder, args.pruning_criterion, args.compression_error_metric, args.pruning_type)
    print(f"{table['exp_key'].nunique()} run(s), {len(table)} row(s) (pruning ratio: {scope}) -> {path}")
    if failed is not None:
        print(f"htsgd analyze: error: {failed}", file=sys.stderr)
        return 1
    return 0


def train(args):
    """`htsgd train`: validate everything, then load the data and train into --save_dir, under the run folder's
    lock, the one `htsgd run` takes: the two never write one run at once, and `--overwrite` never removes files
    another process is writing."""
    from .core.data import load
    from .core.train import default_device
    from .pipeline import claims
    from .pipeline.downloads import tidy_on_failure
    from .record.names import CHECKPOINT, WEIGHTS
    from .record.public_paths import command_line
    from .record.run_folder import check, is_complete, remove
    from .record.tensor_files import check_tensor_file
    from .record.trained_run import default_save_dir, train_in_folder

    config = make_config({f.name: getattr(args, f.name) for f in fields(TrainConfig)}, where="command line")
    if args.checkpoint_every < 0:
        raise UserError(f"--checkpoint_every {args.checkpoint_every}: use 0 (never) or a number of steps >= 1")
    save_dir = Path(args.save_dir) if args.save_dir is not None else default_save_dir(config)
    args.save_dir = str(save_dir)  # main() names it when the machine refuses a write
    with ExitStack() as held:
        for lock in run_locks(save_dir):
            held.enter_context(claims.hold(lock, command_line()))
        for name in (CHECKPOINT, WEIGHTS):  # what training would load: a resumable state, a finished run
            if not args.overwrite and (save_dir / name).is_file():
                check_tensor_file(save_dir / name)
        with tidy_on_failure(args.data_dir):
            if args.overwrite:
                remove(save_dir)
            elif is_complete(save_dir):
                raise UserError(f"{save_dir} already holds a finished run; pass --overwrite to train again, or "
                                "choose another --save_dir")
            if (save_dir / CHECKPOINT).is_file():
                print(f"resuming the interrupted run in {save_dir}", file=sys.stderr)
            check(config.to_dict(), save_dir)
            device = args.device or default_device()
            data = load(config.dataset, args.data_dir, device, config.train_size)
            m = train_in_folder(config, data, save_dir, device, progress=not args.no_progress,
                                checkpoint_every=args.checkpoint_every)["metrics"]
    print(f"{m['status']} after {m['steps']} steps in {m['wall_time']:.1f} s ({m['steps_per_second']:.1f} steps/s): "
          f"train acc {m['train_acc']:.2f} %, test acc {m['test_acc']:.2f} % -> {save_dir}")


def run_locks(save_dir: Path) -> list[Path]:
    """The locks `htsgd run` takes on a run folder of a group (the group's driver lock, then the run's own), when
    `save_dir` lies in a group folder (one `htsgd run` has worked in: it holds runs.csv or .locks/); none elsewhere,
    so a run folder of one's own gets no .locks/ beside it."""
    from .pipeline import claims
    from .record.names import LOCKS, RUNS_CSV

    group = save_dir.parent
    if not ((group / RUNS_CSV).is_file() or (group / LOCKS).is_dir()):
        return []
    return [claims.lock_path(group, "driver"), claims.lock_path(group, save_dir.name)]


if __name__ == "__main__":
    sys.exit(main())
