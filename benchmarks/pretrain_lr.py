"""The pre-training learning rate of each arm, chosen on validation data with the same budget for every arm.

For each arm that trains (:data:`medlib.methods.TRAINING_ARMS`), pre-trains on ``--target``'s source pool under
the profile (its epochs, batch and pool) at its method's own rate times each of ``--scales`` (default 0.5, 1 and
2: three rates per arm, centred on the method's own; the bridge's TL start keeps TL's own rate), and fits the
target's linear probe on each encoder (the profile's linear protocol, seed 0). Every run goes to the run store;
the x1 runs are the profile's own. Records, as JSON lines while it goes, per arm and rate: the probe's val AUC,
the pre-training's last held-out kNN accuracy (source pool) and its seconds. Test AUCs are never read.

The choice printed at the end is, per arm, the rate with the highest probe val AUC, or the method's own when that
is within ``--tolerance`` of it (one seed's val AUC does not separate closer rates); it is written as the value of
the ``pretrain_lrs`` knob. The PNG shows val AUC and kNN accuracy against the rate.

    MEDLIB_DATA=folder_of_npz MEDLIB_OFFLINE=1 python -m benchmarks.pretrain_lr --profile gpu --out pretrain_lr/
"""

import argparse
import json
import math
import time
from pathlib import Path

from benchmarks.budget_curve import pretrain_and_probe, rows_and_figure, save, sweep_options
from medlib.methods import ARM_COLOURS, TRAINING_ARMS, get
from medlib.pretrain import NonFiniteLoss
from medlib.profiles import parameters
from medlib.store import RunStore
from medlib.validation import check_choices, check_number, check_numbers


def measured(P, arm: str, target: str, store: RunStore, setting: dict, lines, say, what: str) -> dict:
    """The row a sweep records for ``arm``'s pre-training under ``P`` (its ``setting``, e.g. the rate; ``what``
    says it in words) and the target's probe on it, never a test AUC: written to ``lines`` at once, and said. A
    pre-training whose loss becomes NaN is a row too (``diverged``: what happened; no AUC), and the sweep goes on."""
    row = {"arm": arm, "target": target, "profile": P.profile, **setting}
    try:
        run, probe = pretrain_and_probe(P, arm, target, store)
    except NonFiniteLoss as e:
        row |= {"val_auc": None, "knn_acc": None, "diverged": str(e)}
        say(f"{arm} {what}: diverged: {e}")
    else:
        row |= {"val_auc": probe["val_auc"], "knn_acc": run["history"][-1]["knn_acc"],
                "loss": run["history"][-1]["loss"], "epochs": len(run["history"]), "pretrain_seconds": run["seconds"],
                "device": run["device"], "precision": run["precision"]}
        say(f"{arm} {what}: probe val AUC {row['val_auc']:.3f}, kNN {row['knn_acc']:.3f}, pre-training "
            f"{row['pretrain_seconds']:.1f} s")
    lines.write(json.dumps(row) + "\n")
    lines.flush()
    return row


def sweep(profile: str, target: str, arms: list[str], scales: list[float], out: Path, say=print,
          tolerance: float = 0.0) -> list[dict]:
    """Compute (or read from the run store) each arm's pre-training and probe at each rate; write the JSON lines
    to ``out/pretrain_lr.jsonl`` as they come; return the rows. ``tolerance`` (of :func:`choice`) is checked
    first, so that a bad one stops the sweep before any pre-training."""
    check_number("tolerance", tolerance, low=0)
    check_choices("arms", arms, TRAINING_ARMS)
    check_numbers("scales", scales, low=0, low_open=True)
    store, rows = RunStore(), []
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "pretrain_lr.jsonl", "w") as lines:
        for arm in arms:
            for scale in sorted(scales):
                lr = get(arm).lr * scale
                P = parameters(profile=profile, target=target, pretrain_lrs={arm: lr})
                rows.append(measured(P, arm, target, store, {"scale": scale, "lr": lr}, lines, say,
                                     f"lr {lr:g} (x{scale:g})"))
    return rows


def best(rows: list[dict], default, tolerance: float) -> dict[str, dict]:
    """Per arm, its row of the highest probe val AUC, or its row where ``default(row)`` when that is within
    ``tolerance`` of it (one seed's val AUC does not separate closer settings). Diverged rows are never chosen;
    an arm whose every row diverged has no choice (it keeps its method's default)."""
    out = {}
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm and r["val_auc"] is not None]
        if not mine:
            continue
        top = max(mine, key=lambda r: r["val_auc"])
        own = next((r for r in mine if default(r)), None)
        out[arm] = own if own and own["val_auc"] >= top["val_auc"] - tolerance else top
    return out


def choice(rows: list[dict], tolerance: float) -> dict[str, float]:
    """Per arm, the rate of the highest probe val AUC, or the method's own (scale 1) when within ``tolerance``."""
    return {arm: r["lr"] for arm, r in best(rows, lambda r: r["scale"] == 1, tolerance).items()}


def sweep_table(rows: list[dict], x: str, heads: tuple[str, str], at, own, chosen: dict) -> str:
    """A sweep as a Markdown table: per arm ``own(arm)`` (its default), the probe val AUC ``at`` each value of
    ``x``, and ``chosen[arm]``; ``heads`` names the default's and the choice's columns."""
    xs = sorted({r[x] for r in rows})
    lines = [f"| arm | {heads[0]} | " + " | ".join(f"val AUC at {at(v)}" for v in xs) + f" | {heads[1]} |",
             "| --- | --- | " + "--- | " * len(xs) + "--- |"]
    for arm in dict.fromkeys(r["arm"] for r in rows):
        auc = {r[x]: "diverged" if r["val_auc"] is None else f"{r['val_auc']:.3f}" for r in rows if r["arm"] == arm}
        pick = f"{chosen[arm]:g}" if arm in chosen else f"{own(arm):g} (every value diverged)"
        lines.append(f"| `{arm}` | {own(arm):g} | " + " | ".join(auc.get(v, "") for v in xs) + f" | {pick} |")
    return "\n".join(lines)


def table(rows: list[dict], tolerance: float) -> str:
    """The rate sweep as a Markdown table: per arm its own rate, the probe val AUC at each scale, and the choice."""
    return sweep_table(rows, "scale", ("own rate", "chosen rate"), lambda s: f"x{s:g}", lambda arm: get(arm).lr,
                       choice(rows, tolerance))


def plot_sweep(rows: list[dict], x: str, xlabel: str, tick, path: Path) -> None:
    """Probe val AUC (target) and kNN accuracy (source pool) against ``x`` (log scale, ticks ``tick(value)``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm]
        for ax, key in zip(axes, ("val_auc", "knn_acc")):
            ax.plot([r[x] for r in mine], [math.nan if r[key] is None else r[key] for r in mine], marker="o",
                    label=arm, color=ARM_COLOURS[arm])
    axes[0].set(ylabel="linear-probe val AUC (target)", title=f"target {rows[0]['target']}")
    axes[1].set(ylabel="held-out kNN accuracy (source pool)", title="pre-training monitor")
    xs = sorted({r[x] for r in rows})
    for ax in axes:
        ax.set(xscale="log", xlabel=xlabel)
        ax.set_xticks(xs, [tick(v) for v in xs])
        ax.minorticks_off()
    save(fig, axes, path)


def plot(rows: list[dict], path: Path) -> None:
    """Probe val AUC and kNN accuracy against the rate, relative to each method's own."""
    plot_sweep(rows, "scale", "pre-training rate / the method's own", lambda s: f"x{s:g}", path)


def report(rows: list[dict], tolerance: float, table, choice, knob: str, default: str, start: float, png: Path):
    """A sweep's table and its choice as the value of ``knob``, with the seconds since ``start`` and the PNG."""
    print(table(rows, tolerance))
    print(f"chosen {knob}: {choice(rows, tolerance)} (probe val AUC; {default} within {tolerance} of the best); "
          f"{time.time() - start:.0f} s; {png}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sweep_options(p, "pretrain_lr")
    p.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0, 2.0],
                   help="multiples of each method's own rate to try")
    p.add_argument("--tolerance", type=float, default=0.005, help="keep the method's own rate within this val AUC")
    args = p.parse_args(argv)
    start = time.time()
    rows = rows_and_figure(p, args, "pretrain_lr", lambda: sweep(args.profile, args.target, args.arms, args.scales,
                                                                 args.out, tolerance=args.tolerance), plot)
    report(rows, args.tolerance, table, choice, "pretrain_lrs", "the method's own rate", start,
           args.out / "pretrain_lr.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
