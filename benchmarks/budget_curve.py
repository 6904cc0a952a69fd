"""The pre-training budget curve: how many epochs a profile's pre-training needs.

For each pre-trained arm, pre-trains on ``--target``'s source pool (the profile's recipe, seed 0) for ``--every``,
2 x ``--every``, ... up to ``--epochs`` epochs, each budget a run of its own with the cosine schedule ending at
that budget (as the profile's pre-training would run with ``pretrain_epochs`` set to it; runs go to the run store
and the one at the profile's budget is the profile's own). Records, as JSON lines while it goes:

- ``monitor`` rows: the pre-training's own held-out kNN accuracy after every epoch (its ``history``),
- ``probe`` rows: the target's linear-probe val AUC (:func:`medlib.adapt.linear_probe` on the frozen encoder, the
  run of the profile's linear protocol, seed 0), the pre-training's seconds and the views its encoder saw (pool
  images x epochs x ``Method.views_per_image``) at each budget.

Every arm takes the same steps per epoch (same pool and batch), so the curve against epochs is the step-matched
comparison; against the encoder's views it is the compute-matched one (SimCLR, BYOL and VICReg pass two views of
an image per step, TL one, so TL at 2E epochs matches an SSL arm at E).

Test AUCs are never recorded: the budget is chosen on validation data only. The suggestion printed at the end is
the smallest budget whose probe val AUC is within ``--tolerance`` of each arm's best; the PNG shows both curves.

    MEDLIB_DATA=folder_of_npz MEDLIB_OFFLINE=1 python -m benchmarks.budget_curve --profile gpu --epochs 200 \\
        --every 50 --out budget_curve/
"""

import argparse
import json
import time
from pathlib import Path

from medlib.experiment import pretrained, run_adaptation
from medlib.methods import TRAINING_ARMS, get
from medlib.profiles import parameters
from medlib.store import RunStore
from medlib.study import adapt_configs, pretrain_config
from medlib.validation import ParameterError, check_choices, check_number


def budgets(epochs: int, every: int) -> list[int]:
    """``every``, 2 x ``every``, ... and ``epochs`` itself."""
    return sorted(set(range(every, epochs + 1, every)) | {epochs})


def pretrain_and_probe(P, arm: str, target: str, store: RunStore) -> tuple[dict, dict]:
    """``arm``'s pre-training on ``target``'s source pool under ``P`` and the target's linear probe on it (the
    run of ``P``'s linear protocol, seed 0), each read from the run store or computed first."""
    run = pretrained(pretrain_config(P, arm, target), store, progress=False)
    probe_cfg = adapt_configs(P, target, arms=[arm], protocols=["linear"], seeds=[0])[0]
    return run, run_adaptation(probe_cfg, store, progress=False)


def curve(profile: str, target: str, arms: list[str], epochs: int, every: int, out: Path, say=print) -> list[dict]:
    """Compute (or read from the run store) every budget's pre-training and probe; write the JSON lines to
    ``out/budget_curve.jsonl`` as they come; return the rows."""
    check_number("epochs", epochs, low=1, integer=True)
    check_number("every", every, low=1, high=epochs, integer=True)
    check_choices("arms", arms, TRAINING_ARMS)
    store, rows = RunStore(), []
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "budget_curve.jsonl", "w") as lines:
        for arm in arms:
            for budget in budgets(epochs, every):
                run, probe = pretrain_and_probe(parameters(profile=profile, target=target, pretrain_epochs=budget),
                                                arm, target, store)
                new = [{"kind": "monitor", "arm": arm, "target": target, "budget": budget, "epoch": h["epoch"],
                        "knn_acc": h["knn_acc"], "loss": h["loss"]} for h in run["history"]]
                new.append({"kind": "probe", "arm": arm, "target": target, "budget": budget,
                            "val_auc": probe["val_auc"], "pretrain_seconds": run["seconds"],
                            "encoder_views": run["n_images"] * budget * get(arm).views_per_image,
                            "n_images": run["n_images"], "device": run["device"], "precision": run["precision"]})
                for row in new:
                    lines.write(json.dumps(row) + "\n")
                lines.flush()
                rows += new
                say(f"{arm} {budget} epochs: kNN {run['history'][-1]['knn_acc']:.3f}, probe val AUC "
                    f"{probe['val_auc']:.3f}, pre-training {run['seconds']:.1f} s")
    return rows


def suggestion(rows: list[dict], tolerance: float) -> int:
    """The smallest budget whose probe val AUC is within ``tolerance`` of the best budget's, for every arm."""
    probes = [r for r in rows if r["kind"] == "probe"]
    best = {a: max(r["val_auc"] for r in probes if r["arm"] == a) for a in {r["arm"] for r in probes}}
    return min(b for b in {r["budget"] for r in probes}
               if all(r["val_auc"] >= best[r["arm"]] - tolerance for r in probes if r["budget"] == b))


def plot(rows: list[dict], path: Path) -> None:
    """kNN accuracy per epoch of each arm's longest run, and probe val AUC per budget, against epochs (step-matched)
    and against the encoder's views (compute-matched; rows from before views were recorded have no such panel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matched = all("encoder_views" in r for r in rows if r["kind"] == "probe")
    fig, (knn, probe, *views) = plt.subplots(1, 2 + matched, figsize=(5 * (2 + matched), 4))
    for arm in dict.fromkeys(r["arm"] for r in rows):
        longest = max(r["budget"] for r in rows if r["arm"] == arm)
        monitor = [r for r in rows if r["kind"] == "monitor" and r["arm"] == arm and r["budget"] == longest]
        knn.plot([r["epoch"] for r in monitor], [r["knn_acc"] for r in monitor], label=f"{arm} ({longest} epochs)")
        probes = [r for r in rows if r["kind"] == "probe" and r["arm"] == arm]
        probe.plot([r["budget"] for r in probes], [r["val_auc"] for r in probes], marker="o", label=arm)
        for ax in views:
            ax.plot([r["encoder_views"] for r in probes], [r["val_auc"] for r in probes], marker="o", label=arm)
    knn.set(xlabel="epoch", ylabel="held-out kNN accuracy (source pool)", title="pre-training monitor")
    probe.set(xlabel="pre-training epochs (budget)", ylabel="linear-probe val AUC (target)",
              title=f"target {rows[0]['target']}: step-matched")
    for ax in views:
        ax.set(xlabel="views through the encoder", ylabel="linear-probe val AUC (target)", title="compute-matched")
    save(fig, [knn, probe, *views], path)


def save(fig, axes, path: Path) -> None:
    """A benchmark's figure, gridded and with legends (where an axis has none placed yet), as a PNG."""
    import matplotlib.pyplot as plt

    for ax in axes:
        ax.grid(alpha=0.3)
        ax.get_legend() or ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def output_options(p: argparse.ArgumentParser, name: str) -> None:
    """The options of every benchmark that records rows and draws them: output folder, replot."""
    p.add_argument("--out", type=Path, default=Path(name), help="folder for the JSON lines and the PNG")
    p.add_argument("--replot", action="store_true", help="only draw the PNG from the JSON lines in --out (e.g. "
                   "on a machine with matplotlib, for a sweep measured where there was none)")


def sweep_options(p: argparse.ArgumentParser, name: str) -> None:
    """The options every sweep of pre-trainings takes: profile, target, arms, and :func:`output_options`."""
    p.add_argument("--profile", default="gpu", help="the profile whose pool, recipe and probe are used")
    p.add_argument("--target", default="breastmnist", help="the target whose pool and probe are used")
    p.add_argument("--arms", nargs="+", default=list(TRAINING_ARMS), help="arms that train (default: all)")
    output_options(p, name)


def rows_and_figure(p: argparse.ArgumentParser, args, name: str, compute, plot) -> list[dict]:
    """The rows (``compute()``, or read back from ``--out`` with ``--replot``; a bad option exits 2 in one line) and
    their PNG, drawn if matplotlib is there."""
    try:
        rows = ([json.loads(line) for line in (args.out / f"{name}.jsonl").read_text().splitlines()]
                if args.replot else compute())
    except ParameterError as e:
        p.exit(2, f"error: {e}\n")
    except FileNotFoundError:
        p.exit(1, f"error: no {name}.jsonl in {args.out} to replot; measure first (without --replot)\n")
    try:
        plot(rows, args.out / f"{name}.png")
    except ImportError:
        print(f"matplotlib is missing: no PNG; draw it elsewhere with `python -m benchmarks.{name} --replot "
              f"--out {args.out}`")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sweep_options(p, "budget_curve")
    p.add_argument("--epochs", type=int, default=200, help="the longest budget")
    p.add_argument("--every", type=int, default=50, help="the step between budgets")
    p.add_argument("--tolerance", type=float, default=0.005, help="probe val AUC within this of the best counts")
    args = p.parse_args(argv)
    start = time.time()
    rows = rows_and_figure(p, args, "budget_curve",
                           lambda: curve(args.profile, args.target, args.arms, args.epochs, args.every, args.out), plot)
    print(f"suggested pretrain_epochs: {suggestion(rows, args.tolerance)} (probe val AUC within {args.tolerance} "
          f"of each arm's best); {time.time() - start:.0f} s; {args.out / 'budget_curve.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
