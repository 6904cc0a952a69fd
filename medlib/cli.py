"""Command line: ``python -m medlib {pretrain,finetune,runs,compute,archive,chapter,book} --help``."""

from __future__ import annotations

import argparse
import ast
import json
import signal
import sys
import threading
from pathlib import Path

from . import __version__
from .scenarios import SCENARIOS
from .validation import ParameterError


PRETRAIN_KNOBS = {"sources": dict(nargs="+"), "size": dict(type=int), "backbone": {}, "stem": {},
                  "pretrain_epochs": dict(type=int), "pretrain_batch_size": dict(type=int),
                  "pretrain_max_images": dict(type=int)}  # knob -> its option's type; its help is the knob's


def _knob_options(p: argparse.ArgumentParser, knobs: dict) -> None:
    """An option per knob (``--pretrain-epochs`` for ``pretrain_epochs``), its help the knob's
    (:data:`medlib.profiles.KNOBS`), and ``--profile`` for every option not given."""
    for name, kwargs in knobs.items():
        p.add_argument(f"--{name.replace('_', '-')}", help=f"{{knob[{name}]}}", **kwargs)
    p.add_argument("--profile", help="{knob[profile]} (default MEDLIB_PROFILE or smoke): the value of every option "
                   "not given")


class _Help(argparse.HelpFormatter):
    """Fills ``{arms}`` and ``{pretrained}`` in an option's help from :mod:`medlib.methods`, and
    ``{knob[name]}`` with a knob's help (:data:`medlib.profiles.KNOBS`), only when help is shown (they import
    torch and lightly, seconds that other commands need not wait)."""

    def _get_help_string(self, action):
        text = super()._get_help_string(action)
        if "{" not in text:
            return text
        from . import methods
        from .profiles import KNOBS

        def either(names):
            return f"{', '.join(names[:-1])} or {names[-1]}"

        return text.format(arms=either(methods.ARMS), pretrained=either(methods.PRETRAINED_ARMS),
                           knob={name: knob.help for name, knob in KNOBS.items()})


class _Parser(argparse.ArgumentParser):
    """An argument error is one line on stderr (exit code 2), not a usage wall; help reads the registry."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=_Help, **kwargs)

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m medlib", description=(
        "Transfer learning versus self-supervised pre-training on MedMNIST (Zhao et al., arXiv:2407.05592)."))
    parser.add_argument("--version", action="version", version=f"medlib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="pre-train one arm on a source pool (stored; resumes if interrupted)")
    p.add_argument("--arm", required=True, help="{pretrained}")
    p.add_argument("--target", required=True, help="the target whose val/test images the pool must exclude")
    _knob_options(p, PRETRAIN_KNOBS)

    p = sub.add_parser("finetune", help="adapt an arm to a target over seeds and print test metrics")
    p.add_argument("--arm", required=True, help="{arms}")
    p.add_argument("--target", required=True)
    p.add_argument("--protocol", default="finetune", help="linear or finetune")
    p.add_argument("--seeds", type=int, nargs="+", help="default: the profile's seeds")
    p.add_argument("--epochs", type=int, help="fine-tuning epochs (default: the profile's finetune_epochs); the "
                   "linear probe fits to convergence and takes none")
    for scenario in SCENARIOS:
        p.add_argument(f"--{scenario.field.replace('_', '-')}", type=int if scenario.integer else float,
                       help=scenario.cli)
    p.add_argument("--minority", type=int, help="the class that --imbalance-ratio cuts and minority recall scores "
                   "(default: the rarest); without --imbalance-ratio it only chooses the class minority recall scores")
    _knob_options(p, PRETRAIN_KNOBS | {"max_train_images": dict(type=int)})

    p = sub.add_parser("runs", help="list what the run store (MEDLIB_RUNS, default runs/) holds")
    p.add_argument("--kind", choices=["pretrain", "adapt"])

    p = sub.add_parser("compute", help="compute every run the chosen chapters need as jobs (no notebook stack)")
    p.add_argument("--profile", required=True, help="smoke, quick, gpu or full")
    p.add_argument("--only", nargs="+", help="chapter names, e.g. 03_head_to_head (default: every chapter)")
    p.add_argument("--executor", default="local", help="local (processes), slurm or debug (in this process)")
    p.add_argument("--jobs", type=int, default=1,
                   help="jobs at once (local processes, or Slurm jobs queued or running)")
    p.add_argument("--retries", type=int, default=2, help="times a failed job is submitted again")
    p.add_argument("--time", type=int, help="minutes per job before it is requeued (default MEDLIB_SLURM_TIME "
                   "or 120)")
    p.add_argument("--partition", help="Slurm partition (default MEDLIB_SLURM_PARTITION)")
    p.add_argument("--gpus", type=int, help="GPUs per Slurm job (default MEDLIB_SLURM_GPUS or 1)")
    p.add_argument("--dry-run", action="store_true", help="print the job count per chapter; submit nothing")
    _parameter_option(p)

    p = sub.add_parser("archive", help="export what the chapters read from the run store (no weights) into at most "
                       "8 files, or import such an archive into a run store")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("export", help="the chosen chapters' stored runs into FOLDER (replaces an older export)")
    a.add_argument("--profile", required=True, help="smoke, quick, full or gpu")
    a.add_argument("--only", nargs="+", help="chapter names, e.g. 03_head_to_head (default: every chapter); "
                   "FOLDER may follow them")
    a.add_argument("folder", nargs="?")
    a = actions.add_parser("import", help="fill the run store (MEDLIB_RUNS) from FOLDER, verifying checksums")
    a.add_argument("folder")

    p = sub.add_parser("chapter", help="execute one chapter template with parameters of your own into a folder")
    p.add_argument("name", help="a chapter, e.g. 04_scarcity")
    _parameter_option(p)
    p.add_argument("--profile", help="smoke, quick, gpu or full (default MEDLIB_PROFILE or smoke)")
    p.add_argument("--out", default=".", help="folder the executed notebook is written to (default: here)")

    p = sub.add_parser("book", help="execute every chapter with papermill into book/results/ and build the HTML")
    p.add_argument("--profile", required=True, help="smoke, quick, gpu or full")
    p.add_argument("--only", nargs="+", help="chapter names, e.g. 04_scarcity")
    p.add_argument("--no-build", action="store_true", help="execute the chapters but skip jupyter-book build")
    return parser


def _parameter_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a knob of the chapters' parameters cells; VALUE is read as a Python literal if it is "
                   "one, e.g. -p seeds '[0, 1, 2]', else as text")


def _given(args) -> dict:
    """The ``-p NAME VALUE`` knobs of a command (:func:`_parameter_option`)."""
    return {name: _literal_or_text(value) for name, value in args.parameter}


def _knobs(args) -> dict:
    """The knobs the command line gave (options of :func:`_knob_options`, and ``--target``)."""
    names = ["profile", "target", *PRETRAIN_KNOBS, "max_train_images"]
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _literal_or_text(value: str):
    """A ``-p`` value as papermill reads one: a Python literal (number, list, True, None) where it is one, else text."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _run(args) -> int:
    from .profiles import parameters

    if args.command == "pretrain":
        from .experiment import pretrained
        from .methods import get
        from .study import pretrain_config

        P = parameters(**_knobs(args))
        result = pretrained(pretrain_config(P, args.arm, args.target))
        print(json.dumps({k: result[k] for k in ("run_dir", "n_images", "seconds", "images_per_s")}, indent=1))
        if result["history"]:  # an arm that trains nothing of its own (fusion) has no epochs
            last = result["history"][-1]
            print(f"final loss {last['loss']:.4f}, kNN accuracy {last['knn_acc']:.3f}")
        else:
            print(f"{args.arm} trains nothing of its own: its encoder is made from the stored pre-trainings of "
                  f"{' and '.join(get(args.arm).starts_from)}")
    elif args.command == "finetune":
        from .experiment import run_grid, summarize
        from .study import adapt_configs

        if args.epochs is not None and args.protocol == "linear":
            raise ParameterError(f"epochs={args.epochs} is not allowed with protocol='linear': the linear probe fits "
                                 "to convergence; --epochs sets fine-tuning's epochs")
        epochs = {} if args.epochs is None else {"finetune_epochs": args.epochs}
        P = parameters(**_knobs(args), arms=[args.arm], protocols=[args.protocol], seeds=args.seeds, **epochs)
        scenario = {k: v for k in [s.field for s in SCENARIOS] + ["minority"]
                    if (v := getattr(args, k)) is not None}
        df = run_grid(adapt_configs(P, args.target, **scenario))
        if df["skipped"].isna().any():
            print(summarize(df, ["arm", "protocol"]).round(3).to_string(index=False))
        for _, row in df[df["skipped"].notna()].iterrows():
            print(f"skipped: {row['arm']} {row['protocol']} seed {row['seed']}: {row['skipped']}")
    elif args.command == "runs":
        from .store import RunStore

        store = RunStore()
        rows, damaged = store.scan(args.kind)
        for row in rows:
            c, r = row["config"], row["result"]
            what = (f"{c['arm']} on {'+'.join(c['sources'])}, {c['epochs']} epochs" if row["kind"] == "pretrain"
                    else f"{c['arm']} {c['protocol']} -> {c['target']} seed {c['seed']}: AUC {r['test']['auc']:.3f}")
            print(f"{row['kind']:8s} {row['key']}  {what}  (commit {row['commit']})")
        for line in damaged:
            print(f"damaged: {line}", file=sys.stderr)
        print(f"{len(rows)} runs in {store.root}" + (f" ({len(damaged)} damaged, left out)" if damaged else ""))
    elif args.command == "compute":
        from .jobs import compute_command

        return compute_command(parameters(profile=args.profile, **_given(args)), args)
    elif args.command == "archive":
        from .archive import archive_command

        return archive_command(args)
    elif args.command == "chapter":
        from .runner import chapters, run_chapter

        if args.name not in chapters():
            raise ParameterError(f"unknown chapter {args.name!r}; choose from: {', '.join(chapters())}")
        print(run_chapter(args.name, parameters(profile=args.profile).profile, _given(args),
                          output_dir=Path(args.out)))
    elif args.command == "book":
        from .runner import run_book

        run_book(parameters(profile=args.profile).profile, args.only, build=not args.no_build)
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (a ``kill`` or a job scheduler), handled as Ctrl-C is."""


def _terminate(signum, frame):
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from subprocess import CalledProcessError

    from .data import DataError
    from .pretrain import NonFiniteLoss
    from .store import StoreError
    failures = (DataError, NonFiniteLoss, StoreError)
    if args.command in ("chapter", "book"):  # the runner needs the notebook stack, which the others do without
        from .runner import ChapterFailed

        failures += (ChapterFailed,)
    if args.command == "archive":
        from .archive import ArchiveError

        failures += (ArchiveError,)

    in_main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers can be set
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return _run(args)
    except ParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except failures as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if getattr(e, "ename", None) == "ParameterError" else 1  # a refusal inside a chapter
    except CalledProcessError as e:
        print(f"error: {' '.join(map(str, e.cmd))} failed with exit code {e.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"{'terminated' if isinstance(e, Terminated) else 'interrupted'}: finished runs and the last complete "
              "checkpoint are kept in the run store", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
