"""Command line: ``python -m phn run ...`` trains one strategy on one stream and prints a summary.

Example::

    python -m phn run --stream split-fashionmnist --strategy hn --freeze-depth 4 --epochs 1 \\
        --seed 0 --class-order 0,1,2,3,4,5,6,7,8,9 --max-per-class 1000 --out runs/hn4

``python -m phn sweep --grid strategy=Naive,HN-4 --grid seed=0,1 --out runs/sweeps/s`` runs a grid of
runs, in this process or on Ray (:mod:`phn.sweep`), and prints mean +- std per strategy.

``python -m phn notebook IN OUT -p name value`` executes a notebook with papermill and refuses
parameters the notebook does not declare (:mod:`phn.notebooks`).

Bad values (unknown strategy, freeze depth outside 0..4, negative epochs, missing data, unknown
notebook parameters, a device this machine lacks, a run directory in use or holding another
configuration, an unreadable checkpoint) end with a one-line message and exit status 2, without a
traceback (``PHN_DEBUG=1`` shows it). A run whose loss becomes NaN or infinite stops with one line
and exit status 1; Ctrl-C exits with status 130 at any point, start-up included.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import typing
from collections.abc import Sequence

from phn.config import DEFAULT_EWC_LAMBDA, MAX_SEED, ConfigError, EvalOrder, RunConfig, from_dict

EVAL_ORDERS = list(typing.get_args(EvalOrder))


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _name_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage dump); ``--help`` shows the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """The options that describe one run's configuration (``phn run``; the base of ``phn sweep``)."""
    s = parser.add_argument_group("stream")
    s.add_argument("--stream", default="split-fashionmnist",
                   help="split-<dataset>, noisy-<dataset> or cross:<a>-><b>; datasets: fashionmnist, mnist, "
                        "cifar10, cifar100, svhn, gtsrb, tinyimagenet")
    s.add_argument("--num-experiences", type=int, help="experiences (default: the stream's)")
    s.add_argument("--classes-per-experience", type=int, help="classes per experience (default: the stream's)")
    s.add_argument("--class-order", type=_int_list, help="explicit class order, e.g. 0,1,2,3 (default: seeded)")
    s.add_argument("--stream-seed", type=int, help="seed of the class order (default: --seed)")
    s.add_argument("--max-per-class", type=int, help="first N images per class (train and test)")
    s.add_argument("--max-per-class-test", help="test cap overriding --max-per-class, or 'all'")
    s.add_argument("--no-augment", action="store_true", help="no random crop / flip on training images")
    s.add_argument("--data-root", help="first data root to search (then $PHN_DATA, then data/)")
    s.add_argument("--no-verify-checksums", action="store_true",
                   help="skip the md5 check of the dataset files (re-packed or generated files)")
    s.add_argument("--download", action="store_true",
                   help="download missing dataset files into the first data root (needs internet)")

    m = parser.add_argument_group("strategy and model")
    m.add_argument("--strategy", default="hn", choices=["naive", "ewc", "lr", "hn"],
                   help="hn with --freeze-depth 0 is HN-F")
    m.add_argument("--freeze-depth", type=int, default=4, help="k in 0..4: stem + stages 1..k frozen after experience 1")
    m.add_argument("--norm", default="per_sample", choices=["per_sample", "batch"],
                   help="normalisation of the generated layers")
    m.add_argument("--prefix-norm", default="running", choices=["running", "batch"],
                   help="BN of the non-generated layers: running statistics, or the authors' batch statistics")
    m.add_argument("--ewc-lambda", type=float, default=DEFAULT_EWC_LAMBDA, help="EWC penalty coefficient")
    m.add_argument("--buffer-size", type=int, default=200, help="latent replay buffer size")
    m.add_argument("--replay-coef", type=float, default=1.0, help="latent replay coefficient c")

    h = parser.add_argument_group("hypernetwork")
    h.add_argument("--embedding-dim", type=int, default=32)
    h.add_argument("--hidden", type=_int_list, default=[50, 32], help="trunk widths")
    h.add_argument("--lookup-dim", type=int, default=32, help="d of the channel-wise conv heads")
    h.add_argument("--beta", type=float, default=0.5, help="regulariser coefficient")
    h.add_argument("--lookahead", default="first", choices=["none", "first", "second"])
    h.add_argument("--reg-tasks", type=int, default=20, help="earlier tasks sampled per step (0 = all)")
    h.add_argument("--init", default="pytorch", choices=["pytorch", "kaiming"],
                   help="head initialisation: PyTorch's defaults (the authors' release) or Kaiming-scaled "
                        "generated weights (forgets more)")

    t = parser.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=1, help="epochs per experience (paper: 100)")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--eval-batch-size", type=int, default=256)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0, help="model initialisation and, unless --stream-seed, class order")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    t.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    t.add_argument("--eval-order", default="interleaved", choices=EVAL_ORDERS,
                   help="test batches shuffled across classes, sorted by class as Avalanche delivers them, "
                        "or in the file's index order (the authors' interleaved evaluation)")
    t.add_argument("--extra-eval-orders", type=_name_list, default=[],
                   help="further test orders to evaluate the same model under, e.g. sorted,index "
                        "(metrics.json: acc_by_order)")
    t.add_argument("--eval-every", type=int, default=0,
                   help="evaluate the experiences seen so far every N steps (or epochs) while training: "
                        "accuracy over time in curves.csv (0 = off)")
    t.add_argument("--eval-unit", default="step", choices=["step", "epoch"], help="unit of --eval-every")
    t.add_argument("--num-workers", type=int, default=0, help="data loader workers (--data-path loader)")
    t.add_argument("--data-path", default="device", choices=["device", "loader"],
                   help="training batches cropped, flipped and normalised on the training device (in-memory "
                        "datasets), or a DataLoader with per-item transforms")
    t.add_argument("--no-step-logs", action="store_true", help="do not keep per-step logs")



def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m phn", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="train one strategy on one stream",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_options(run)
    o = run.add_argument_group("output")
    o.add_argument("--out", help="run directory (config.json, metrics.json, accuracy.csv, steps.csv, checkpoint)")
    o.add_argument("--resume", action="store_true", help="continue after the last finished experience in --out")
    o.add_argument("--no-cache", action="store_true", help="train even if --out holds results of this config")
    o.add_argument("--overwrite", action="store_true",
                   help="replace the files of a run with other settings in --out (else refused)")
    o.add_argument("--reuse-other-code", action="store_true",
                   help="reuse finished results in --out of the same settings and data computed by other phn "
                        "code (default: recompute them)")
    o.add_argument("--checkpoint-minutes", type=float,
                   help="write a checkpoint after an epoch only when this many minutes passed since the last "
                        "(default: after every epoch; always after every experience)")
    o.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: only on a terminal)")
    sweep = commands.add_parser(
        "sweep", help="run a grid of runs in this process or on Ray (resumable), print the paper's table",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Run every combination of the --grid values (over the run options given, as `phn run` "
                    "reads them) as trials of a sweep: one run directory each, finished ones skipped, failed "
                    "ones retried once; then print mean +- std per strategy (phn.sweep).")
    add_config_options(sweep)
    g = sweep.add_argument_group("sweep")
    g.add_argument("--grid", action="append", default=[], metavar="AXIS=V1,V2",
                   help="an axis and its values, e.g. strategy=Naive,EWC,HN-4 seed=0,1 freeze_depth=2,4 "
                        "stream=split-mnist hyper.beta=0.1,1 (repeat for more axes)")
    g.add_argument("--out", required=True, help="sweep directory (sweep.json, trials/, runs/, summary.csv)")
    g.add_argument("--resume", action="store_true", help="continue the unfinished sweep in --out")
    g.add_argument("--executor", default="ray", choices=["ray", "inprocess"],
                   help="Ray tasks (local Ray unless --address), or one after another in this process")
    g.add_argument("--address", help="address of a running Ray cluster (e.g. auto or ray://host:10001)")
    g.add_argument("--max-concurrent", type=int, help="trials at a time (default: as Ray's resources allow)")
    g.add_argument("--cpus-per-trial", type=float, default=1.0, help="Ray CPUs per trial")
    g.add_argument("--gpus-per-trial", type=float, default=0.0, help="Ray GPUs per trial")
    g.add_argument("--threads-per-trial", type=int, help="torch threads per trial (default: --cpus-per-trial)")
    g.add_argument("--retries", type=int, default=1, help="further attempts of a failed trial")
    g.add_argument("--runs-root", help="where trials' run directories go (default: OUT/runs)")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: only on a terminal)")
    nb = commands.add_parser("notebook", help="execute a notebook with papermill, refusing unknown parameters",
                             description="Execute a notebook with parameters (papermill); a parameter the notebook "
                                         "does not declare is an error, not a warning.")
    nb.add_argument("input", help="notebook, e.g. notebooks/noise.ipynb")
    nb.add_argument("output", help="executed copy to write")
    nb.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a parameter; VALUE is read as YAML (-p seeds '[0, 1]'), None/True/False as papermill")
    nb.add_argument("-y", "--yaml", action="append", default=[], help="parameters as a YAML mapping")
    nb.add_argument("--cwd", help="working directory of the kernel (default: the notebook's folder)")
    return parser


def run_notebook(args: argparse.Namespace) -> int:
    """``python -m phn notebook``: check the parameters, execute, report one line on failure."""
    import papermill

    from phn.notebooks import execute, parse_assignments

    parameters = parse_assignments(args.parameter, args.yaml)
    cwd = args.cwd or os.path.dirname(os.path.abspath(args.input))
    try:
        execute(args.input, args.output, parameters, cwd=cwd)
    except papermill.PapermillExecutionError as error:
        partial = os.path.splitext(args.output)[0] + ".partial.ipynb"
        print(f"phn: error: {args.input} failed in cell {error.exec_count}: {error.ename}: "
              f"{' '.join(str(error.evalue).split())} (executed copy: {partial})", file=sys.stderr)
        return 1
    print(f"executed: {args.output}")
    return 0


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The :class:`RunConfig` the options describe (validated: bad values raise ConfigError)."""
    test_cap = args.max_per_class_test
    if test_cap is not None and test_cap != "all":
        try:
            test_cap = int(test_cap)
        except ValueError:
            raise ConfigError(f"--max-per-class-test must be an integer or 'all', got {test_cap!r}") from None
    stream = {
        "name": args.stream, "seed": args.seed if args.stream_seed is None else args.stream_seed,
        "num_experiences": args.num_experiences, "classes_per_experience": args.classes_per_experience,
        "class_order": args.class_order, "max_per_class": args.max_per_class, "max_per_class_test": test_cap,
        "augment": not args.no_augment, "root": args.data_root,
        "verify_checksums": False if args.no_verify_checksums else None, "download": args.download,
    }
    for option, value in (("--seed", args.seed), ("--stream-seed", args.stream_seed)):
        if value is not None and not 0 <= value <= MAX_SEED:
            raise ConfigError(f"{option} must be an integer in 0..2**63-1, got {value}")
    if getattr(args, "checkpoint_minutes", None) is not None and not args.checkpoint_minutes >= 0:
        raise ConfigError(f"--checkpoint-minutes must be >= 0, got {args.checkpoint_minutes}")
    try:
        return from_dict(RunConfig, {
            "stream": stream,
            "strategy": {"name": args.strategy, "ewc_lambda": args.ewc_lambda, "buffer_size": args.buffer_size,
                         "replay_coef": args.replay_coef},
            "model": {"freeze_depth": args.freeze_depth, "norm": args.norm, "prefix_norm": args.prefix_norm},
            "hyper": {"embedding_dim": args.embedding_dim, "hidden": args.hidden, "lookup_dim": args.lookup_dim,
                      "beta": args.beta, "lookahead": args.lookahead, "reg_tasks": args.reg_tasks,
                      "init": args.init},
            "train": {"epochs": args.epochs, "batch_size": args.batch_size, "eval_batch_size": args.eval_batch_size,
                      "lr": args.lr, "seed": args.seed, "device": args.device, "amp": not args.no_amp,
                      "eval_order": args.eval_order, "extra_eval_orders": args.extra_eval_orders,
                      "eval_every": args.eval_every, "eval_unit": args.eval_unit,
                      "num_workers": args.num_workers, "data_path": args.data_path,
                      "log_steps": not args.no_step_logs},
        })
    except ValueError as error:  # StreamConfig validates names and class orders with ValueError
        raise ConfigError(str(error)) from None


def parse_grid(items: Sequence[str]) -> dict[str, list]:
    """``--grid`` values (``AXIS=V1,V2``) as sweep axes; values are read as ``-p`` values (numbers,
    None, strings)."""
    from phn.notebooks import parse_value

    axes: dict[str, list] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        parsed = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
        if not sep or not name or not parsed:
            raise ConfigError(f"--grid expects AXIS=V1,V2 (e.g. strategy=Naive,HN-4), got {item!r}")
        if name in axes:
            raise ConfigError(f"--grid {name} is given twice; list all its values in one --grid")
        axes[name] = parsed
    return axes


def run_sweep_command(args: argparse.Namespace) -> int:
    """``python -m phn sweep``: expand the grid, run it, print the paper's table."""
    from phn.sweep import SweepOptions, grid, paper_table, run_sweep

    if not 0 <= args.freeze_depth <= 4:
        raise ConfigError(f"--freeze-depth must be in 0..4, got {args.freeze_depth}")
    axes = parse_grid(args.grid)
    if not axes:
        raise ConfigError("phn sweep needs at least one --grid AXIS=V1,V2 (e.g. --grid strategy=Naive,HN-4)")
    configs = grid(config_from_args(args), axes)
    options = SweepOptions(executor=args.executor, address=args.address, max_concurrent=args.max_concurrent,
                           cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                           threads_per_trial=args.threads_per_trial, retries=args.retries, progress=args.progress)
    print(f"sweep: {len(configs)} trials ({' x '.join(f'{len(v)} {k}' for k, v in axes.items())}) in {args.out}",
          file=sys.stderr)
    result = run_sweep(configs, args.out, options, resume=args.resume, runs_root=args.runs_root)
    print(paper_table(result.summary).to_string(index=False))
    for tid, error in result.failed.items():
        print(f"failed: {tid}: {error}")
    print(f"sweep: {args.out} (trials.csv, summary.csv; {len(result.results)} of {len(configs)} trials done)")
    return 1 if result.failed else 0


def format_summary(cfg: RunConfig, results) -> str:
    """A short table: one row per experience, then the stream's ACA / learning accuracy / forgetting."""
    table = results.per_experience()
    for column in ("learning_accuracy", "final_accuracy", "forgetting"):
        table[column] = 100 * table[column]
    summary = results.summary()
    timing = " (cached: measured when these results were computed)" if results.cached else ""
    lines = [
        f"{cfg.label} on {cfg.stream.name} ({results.num_experiences} experiences, {cfg.train.epochs} epoch(s) each)",
        table.to_string(index=False, float_format=lambda v: f"{v:.1f}"),
        f"ACA {summary['aca']:.1f}%  learning accuracy {summary['learning_accuracy']:.1f}%  "
        f"forgetting {summary['forgetting']:.1f}%  train time {summary['train_time_s']:.1f} s{timing}  "
        f"parameters {summary['parameters']:,}  stored floats {summary['stored_floats']:,}",
    ]
    lines += [f"warning: {w}" for w in results.warnings]
    return "\n".join(lines)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (Ctrl-C at any point: 130, one line)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("phn: interrupted (rerun with --resume to continue a run)", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)  # notices of the runner: cache hits, stale locks, ...
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("phn")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    from phn.data import CorruptDatasetError, DatasetNotFoundError
    from phn.train import DivergenceError, run_config

    try:
        if args.command == "notebook":
            return run_notebook(args)
        if args.command == "sweep":
            return run_sweep_command(args)
        if not 0 <= args.freeze_depth <= 4:
            raise ConfigError(f"--freeze-depth must be in 0..4, got {args.freeze_depth}")
        cfg = config_from_args(args)
        if args.resume and not args.out:
            raise ConfigError("--resume needs --out (the run directory to continue)")
        every = None if args.checkpoint_minutes is None else 60 * args.checkpoint_minutes
        results = run_config(cfg, out_dir=args.out, resume=args.resume, use_cache=not args.no_cache,
                             progress=args.progress, overwrite=args.overwrite,
                             reuse_other_code=args.reuse_other_code, checkpoint_every_s=every)
    except (ValueError, DatasetNotFoundError, CorruptDatasetError) as error:  # ConfigError is a ValueError
        if os.environ.get("PHN_DEBUG"):
            raise
        print(f"phn: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except DivergenceError as error:
        if os.environ.get("PHN_DEBUG"):
            raise
        print(f"phn: error: {_one_line(error)}", file=sys.stderr)
        return 1
    finally:
        logger.removeHandler(handler)
    print(format_summary(cfg, results))
    if args.out:
        print(f"results: {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
