"""Pre-training with the step captured as a CUDA graph against the same pre-training run eagerly (needs a GPU).

For each arm, :func:`medlib.pretrain.pretrain` runs the same config twice, with CUDA graphs (medlib's default on
CUDA) and with ``MEDLIB_CUDA_GRAPHS=0``, and the script prints per arm: the largest difference between the two
encoders' weights (graphed and eager steps launch the same kernels on the same random numbers, so it should be
0), each
run's per-epoch loss and kNN accuracy, and the last epoch's images/s (the first holds the capture).

    MEDLIB_DATA=folder_of_npz python -m benchmarks.graph_check --out graph_check.json
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

from medlib.compute import default_device
from medlib.methods import TRAINING_ARMS
from medlib.pretrain import PretrainConfig, pretrain
from medlib.provenance import device as describe_device
from medlib.store import load_torch


def run(cfg: PretrainConfig, graphs: bool) -> tuple[dict, dict]:
    os.environ["MEDLIB_CUDA_GRAPHS"] = "1" if graphs else "0"
    with tempfile.TemporaryDirectory() as tmp:
        result = pretrain(cfg, Path(tmp), progress=False)
        return result, load_torch(Path(tmp) / "encoder.pt")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for arm in TRAINING_ARMS:
        cfg = PretrainConfig(arm=arm, sources=("pneumoniamnist", "retinamnist"), targets=("breastmnist",),
                             epochs=args.epochs, max_images=args.max_images, batch_size=args.batch_size)
        (graphed, w_graphed), (eager, w_eager) = run(cfg, True), run(cfg, False)
        diff = max((w_graphed[k].float() - w_eager[k].float()).abs().max().item() for k in w_graphed)
        scale = max(w_eager[k].float().abs().max().item() for k in w_eager)
        row = {"arm": arm, "config": cfg.to_dict(), "device": describe_device(default_device()),
               "max_abs_weight_diff": diff, "max_abs_weight": scale,
               **{f"{name}_{key}": [h[key] for h in r["history"]]
                  for name, r in (("graphed", graphed), ("eager", eager)) for key in ("loss", "knn_acc", "images_per_s")}}
        rows.append(row)
        print(f"{arm:10s} max |w_graphed - w_eager| {diff:.3g} (max |w| {scale:.3g}); "
              f"loss {row['graphed_loss'][-1]:.4f} / {row['eager_loss'][-1]:.4f}; "
              f"kNN {row['graphed_knn_acc'][-1]:.3f} / {row['eager_knn_acc'][-1]:.3f}; "
              f"last-epoch images/s {row['graphed_images_per_s'][-1]:.0f} / {row['eager_images_per_s'][-1]:.0f} "
              f"= {row['graphed_images_per_s'][-1] / row['eager_images_per_s'][-1]:.2f}x (graphed / eager)", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
