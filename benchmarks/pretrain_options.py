"""A method option of each arm (SimCLR's temperature, BYOL's momentum), chosen on validation data like the rate.

For each arm that trains and has ``--option`` among its method's options (``Method.options``), pre-trains on
``--target``'s source pool under the profile (its epochs, batch, pool and rates, ``pretrain_lrs``) with the option
at each of ``--values``, and fits the target's linear probe (the profile's linear protocol, seed 0) on each
encoder. Every run goes to the run store; the run at the method's default is the profile's own. Records, as JSON
lines while it goes, per arm and value: the probe's val AUC, the pre-training's last held-out kNN accuracy (source
pool) and its seconds. Test AUCs are never read.

``--pretrain-lrs`` sets the rates (e.g. the rate sweep's choice, :mod:`benchmarks.pretrain_lr`), so that an
option is tuned at the rate its arm will pre-train at. The choice printed at the end is, per arm, the value with
the highest probe val AUC, or the method's default when that is within ``--tolerance`` of it; it is written as
the value of the ``pretrain_options`` knob (merge it with another option's choice by hand). The PNG shows val AUC
and kNN accuracy against the value.

    MEDLIB_DATA=folder_of_npz MEDLIB_OFFLINE=1 python -m benchmarks.pretrain_options --profile gpu \\
        --option temperature --values 0.1 0.2 0.5 --out pretrain_temperature/
"""

import argparse
import time
from pathlib import Path

from benchmarks.budget_curve import rows_and_figure, sweep_options
from benchmarks.pretrain_lr import best, measured, plot_sweep, report, sweep_table
from medlib.methods import TRAINING_ARMS, get
from medlib.profiles import parameters
from medlib.store import RunStore
from medlib.validation import ParameterError, check_choices, check_number, check_sequence


def arms_with(option: str, arms: list[str]) -> list[str]:
    """The arms of ``arms`` whose method has ``option`` (one line if none has it)."""
    check_choices("arms", arms, TRAINING_ARMS)
    mine = [a for a in arms if option in get(a).options]
    if not mine:
        have = sorted({o for a in TRAINING_ARMS for o in get(a).options})
        raise ParameterError(f"option={option!r}: no arm of {arms} has it; the options are: {', '.join(have)}")
    return mine


def sweep(profile: str, target: str, arms: list[str], option: str, values: list[float], out: Path, say=print,
          tolerance: float = 0.0, lrs=None) -> list[dict]:
    """Compute (or read from the run store) each arm's pre-training and probe at each value of ``option``, at the
    rates ``lrs`` (the ``pretrain_lrs`` knob; None: the profile's); write the JSON lines to
    ``out/pretrain_options.jsonl`` as they come; return the rows. Every value is checked against every arm's bounds
    first, so that a bad one stops the sweep before any pre-training."""
    check_number("tolerance", tolerance, low=0)
    lrs = parameters(profile=profile, pretrain_lrs=lrs).pretrain_lrs
    mine = arms_with(option, arms)
    if mine != arms:
        say(f"{option}: sweeping {', '.join(mine)}; {', '.join(a for a in arms if a not in mine)} have no such option")
    arms = mine
    check_sequence("values", values)
    for arm in arms:
        for value in values:
            get(arm).check_options("values", {option: value})
    store, rows = RunStore(), []
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "pretrain_options.jsonl", "w") as lines:
        for arm in arms:
            default = get(arm).options[option].default
            for value in sorted(values):
                P = parameters(profile=profile, target=target, pretrain_lrs=lrs,
                               pretrain_options={arm: {option: value}})
                setting = {"option": option, "value": value, "default": default}
                rows.append(measured(P, arm, target, store, setting, lines, say, f"{option} {value:g}"))
    return rows


def choice(rows: list[dict], tolerance: float) -> dict[str, dict[str, float]]:
    """Per arm, ``{option: value}`` of the highest probe val AUC, or the default when within ``tolerance``."""
    return {arm: {r["option"]: r["value"]} for arm, r in best(rows, lambda r: r["value"] == r["default"],
                                                              tolerance).items()}


def table(rows: list[dict], tolerance: float) -> str:
    """The sweep as a Markdown table: per arm the default, the probe val AUC at each value, and the choice."""
    option = rows[0]["option"]
    chosen = {arm: options[option] for arm, options in choice(rows, tolerance).items()}
    default = {r["arm"]: r["default"] for r in rows}
    return sweep_table(rows, "value", ("default", f"chosen {option}"), lambda v: f"{v:g}", default.get, chosen)


def plot(rows: list[dict], path: Path) -> None:
    """Probe val AUC and kNN accuracy against the option's value."""
    plot_sweep(rows, "value", rows[0]["option"], lambda v: f"{v:g}", path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sweep_options(p, "pretrain_options")
    p.add_argument("--option", default="temperature", help="the method option to sweep (e.g. temperature, momentum)")
    p.add_argument("--values", type=float, nargs="+", default=[0.1, 0.2, 0.5], help="the option's values to try")
    p.add_argument("--tolerance", type=float, default=0.005, help="keep the default within this val AUC")
    p.add_argument("--pretrain-lrs", help="the rates to pre-train at, as the pretrain_lrs knob takes them, e.g. "
                   "\"{'ssl-simclr': 0.03}\" (default: the profile's)")
    args = p.parse_args(argv)
    start = time.time()
    rows = rows_and_figure(p, args, "pretrain_options", lambda: sweep(
        args.profile, args.target, args.arms, args.option, args.values, args.out, tolerance=args.tolerance,
        lrs=args.pretrain_lrs), plot)
    report(rows, args.tolerance, table, choice, "pretrain_options", "the default", start,
           args.out / "pretrain_options.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
