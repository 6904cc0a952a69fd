"""Images/s of medlib's pre-training steps against the standard recipe and the compute bound.

For one backbone (ResNet-18, channels_last, with the ImageNet stem of the quick profile or the small-input ``cifar``
stem of the full one), one batch size and the same source images, three ways to run the training step of each
self-supervised method of :mod:`medlib.methods` with a lightly transform (SimCLR, Chen et al., ICML 2020; BYOL,
Grill et al., NeurIPS 2020; ...) are timed:

``a`` medlib: uint8 images resident on the training device, views drawn in batches by :mod:`medlib.augment`
    inside the method's ``loss``, then forward, backward, SGD step and (BYOL) the momentum update: exactly the
    step of :func:`medlib.pretrain.pretrain`.
``b`` the standard recipe: PIL images (made per item from a uint8 array, as ``medmnist``'s datasets do) through
    the method's lightly transform (e.g. ``SimCLRTransform``, ``BYOLView1Transform`` + ``BYOLView2Transform``)
    in a torch ``DataLoader``, then the same model, loss and step. By default (``recipe="matched"``) the
    transforms are set to medlib's recipe (crop scale 0.2-1, jitter 0.4 without hue, grey 0.2, no blur, BYOL's second view solarised with
    p 0.2, mean/std 0.5) so that both sides do the same work; ``recipe="default"`` keeps lightly's defaults
    (which add Gaussian blur and hue jitter, and so only make ``b`` slower).
``c`` the compute bound: the same forward, backward and step on views made before the clock starts.

All three run in the precision of :func:`medlib.compute.precision` (bf16 autocast where the device has native
bf16, on CUDA and on CPUs with AVX-512 BF16 or AMX; ``amp=False``: float32), so they differ only in how the views
are made. Where that precision is bf16, ``a32`` (medlib's step in float32) is timed alongside, and the row's
``bf16_gain`` is a/a32. On CUDA, ``a``, ``a32`` and ``c`` are CUDA graphs, as pre-training runs them
(:mod:`medlib.step`), so ``c`` stays the bound for ``a``; ``ae`` and ``ce`` time the same two steps run eagerly,
and the row's ``graph_gain`` is a/ae. ``b`` runs eagerly, as the standard recipe does.

Timing on the CPU: each repeat runs ``steps`` rounds in which a, a32, c and ``b`` without workers take one step each,
in an order that rotates every round, so that load from other processes hits them alike; a ``DataLoader`` with
workers is timed as one block per repeat (a fresh iterator, ``max(1, num_workers)`` untimed warm-up steps so
that its queue is in steady state, ``steps`` timed steps, then its workers are shut down so that they never
run during a or c). Images/s are medians over the samples; CPU-time ratios (process time of a, c and b0) are
reported too, since other load on the machine barely moves them. On CUDA the uint8 pool lives on the device,
peak device memory is recorded, the loader pins memory, every variant is timed in blocks, and the host
synchronises only around a block.

    python -m benchmarks.throughput --sizes 28 64 --batch-size 256 --steps 3 --repeats 5 --out bench.jsonl

The rows it appends (``--out``, JSON lines with every sample) go to ``benchmarks/results/<date>/``; the book's
page *Pipeline speed* reads them with :mod:`benchmarks.throughput_results`.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler

from medlib.compute import cuda_graphs, default_device, precision
from medlib.data import SIZES, DataError, data_root, file_name, source_pool
from medlib.methods import BENCHMARKED, Method
from medlib.models import STEMS, backbone
from medlib.pretrain import PretrainConfig
from medlib.provenance import device as describe_device
from medlib.step import WARMUP_STEPS, TrainStep, sgd
from medlib.validation import ParameterError, check_choice, check_choices, check_number, check_numbers

METHODS = tuple(BENCHMARKED)  # the registered methods with a lightly transform: simclr, byol, ...
RECIPES = ("matched", "default")
OFFLINE_SOURCES = ("breastmnist", "pneumoniamnist", "retinamnist")
MATCHED = dict(cj_prob=0.8, cj_strength=1.0, cj_bright=0.4, cj_contrast=0.4, cj_sat=0.4, cj_hue=0.0,
               min_scale=0.2, random_gray_scale=0.2, gaussian_blur=0.0, hf_prob=0.5,
               normalize={"mean": [0.5] * 3, "std": [0.5] * 3})


def bench_images(size: int, sources=OFFLINE_SOURCES, max_images: int | None = None) -> tuple[torch.Tensor, str]:
    """uint8 ``N x 3 x size x size`` source images and a note saying where they come from.

    The sources whose official file at ``size`` is in the data root are pooled (real images). If none is,
    the 28 px pool is upsampled with bilinear ``F.interpolate`` (and the note says so).
    """
    present = tuple(f for f in sources if (data_root() / file_name(f, size)).exists())
    if present:
        pool = source_pool(present, size, max_images=max_images)
        return pool.images, f"{'+'.join(present)} train at {size} px ({len(pool)} real images)"
    pool = source_pool(sources, 28, max_images=max_images)
    up = F.interpolate(pool.images.float(), size=(size, size), mode="bilinear", align_corners=False)
    return up.round_().clamp_(0, 255).to(torch.uint8), \
        f"{'+'.join(sources)} train at 28 px upsampled to {size} px ({len(pool)} images)"


class PILViews(Dataset):
    """The standard recipe's dataset: a PIL image per item (as ``medmnist`` makes them), then ``transform``."""

    def __init__(self, images: torch.Tensor, transform):
        self.array = images.permute(0, 2, 3, 1).contiguous().numpy()  # N x H x W x 3 uint8, like medmnist's npz
        self.transform = transform

    def __len__(self):
        return len(self.array)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.array[i]).convert("RGB")), 0


def lightly_transform(method: str, size: int, recipe: str = "matched"):
    """lightly's transform for ``method``: set to medlib's augmentation recipe (``matched``, see the module
    docstring), or lightly's own defaults (``default``: adds Gaussian blur and hue jitter, crops down to 8 %)."""
    check_choice("method", method, METHODS)
    check_choice("recipe", recipe, RECIPES)
    return BENCHMARKED[method].lightly_transform(size, **(MATCHED if recipe == "matched" else {}))


def build(method: str, device: torch.device, batch_size: int, stem: str = "imagenet"
          ) -> tuple[Method, torch.optim.SGD, float]:
    """The method (ResNet-18 with ``stem``, channels_last), SGD and its learning rate, as
    :func:`medlib.pretrain.pretrain` makes them."""
    torch.manual_seed(0)
    encoder = backbone("resnet18", stem)
    model = BENCHMARKED[method](encoder).to(device)
    lr = BENCHMARKED[method].lr * batch_size / 256  # the method's rate, scaled with the batch as pre-training does
    return model, sgd(model, lr, PretrainConfig.weight_decay), lr


class Runner:
    """The step variants for one method and image size, sharing one model and optimiser.

    ``a``, ``a32`` and ``c`` run as :class:`medlib.step.TrainStep` does in pre-training (on CUDA: CUDA graphs),
    and there ``ae`` and ``ce`` are ``a`` and ``c`` run eagerly; ``b`` runs eagerly, as the standard recipe does.
    """

    def __init__(self, method: str, images: torch.Tensor, batch_size: int, device: torch.device, workers,
                 seed: int = 0, recipe: str = "matched", amp: bool = True, stem: str = "imagenet"):
        self.method, self.bs, self.device, self.workers = method, batch_size, device, tuple(workers)
        self.model, self.optimizer, self.lr = build(method, device, batch_size, stem)
        self.model.train()
        self.images = images.to(device)  # uint8, resident on the training device
        self.g = torch.Generator(device).manual_seed(seed)
        self.order, self.pos, self.step_count, self._b0 = None, len(images), 0, None
        self.idx = torch.empty(batch_size, dtype=torch.long, device=device)
        first = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:batch_size]
        with torch.no_grad():
            self.views = self.model.views(self.images[first.to(device)], self.g)  # c's ready-made views
        self.batch = None  # b's views, on the device
        self.dataset = PILViews(images, lightly_transform(method, images.shape[-1], recipe))
        model, graphs = self.model, cuda_graphs(device)  # amp: bf16 autocast, as run_benchmark decides

        def medlib_loss():
            return model.loss(self.images[self.idx], None, self.g)

        def step(loss, amp=amp, graphed=graphs):
            return TrainStep(model, self.optimizer, loss, amp=amp, graphed=graphed, generators=[self.g])

        self.steps = {"a": step(medlib_loss), "c": step(lambda: model.view_loss(self.views)),
                      "b": step(lambda: model.view_loss(self.batch), graphed=False)}
        if amp:
            self.steps["a32"] = step(medlib_loss, amp=False)
        if graphs:
            self.steps |= {"ae": step(medlib_loss, graphed=False),
                           "ce": step(lambda: model.view_loss(self.views), graphed=False)}

    def _run(self, variant: str):
        self.steps[variant](self.lr, self.model.target_weight(self.step_count, 10_000))
        self.step_count += 1

    def _next_index(self):
        if self.pos + self.bs > len(self.images):
            self.order = torch.randperm(len(self.images), generator=self.g, device=self.device)
            self.pos = 0
        self.pos += self.bs
        self.idx.copy_(self.order[self.pos - self.bs:self.pos])

    def step_a(self, variant: str = "a"):
        """medlib's step: ``a``; ``a32`` the same in float32; ``ae`` the same run eagerly."""
        self._next_index()
        self._run(variant)

    def step_b(self, batch):
        views, _ = batch
        self.batch = torch.cat(views).to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        self._run("b")

    def loader(self, workers: int) -> DataLoader:
        sampler = RandomSampler(self.dataset, replacement=True, num_samples=1 << 40,
                                generator=torch.Generator().manual_seed(self.step_count))
        return DataLoader(self.dataset, batch_size=self.bs, sampler=sampler, num_workers=workers, drop_last=True,
                          pin_memory=self.device.type == "cuda")

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def sample(self, variant: str, steps: int) -> tuple[float, float | None]:
        """(wall seconds, CPU seconds of this process) for ``steps`` steps of ``variant``: ``a``, ``c``, or
        ``b<workers>``. ``b0`` draws from one loader kept for the whole run (it has no background work); a loader
        with workers is started afresh, warmed up for ``max(1, workers)`` steps, timed, and shut down (no CPU
        seconds: its work is in other processes)."""
        workers = int(variant[1:]) if variant.startswith("b") else None
        if workers:
            batches = iter(self.loader(workers))
            for _ in range(max(1, workers)):  # warm-up: workers started and the queue in steady state
                self.step_b(next(batches))
            step = lambda: self.step_b(next(batches))  # noqa: E731
        elif workers == 0:
            if self._b0 is None:
                self._b0 = iter(self.loader(0))
            step = lambda: self.step_b(next(self._b0))  # noqa: E731
        else:
            step = {"a": self.step_a, "a32": lambda: self.step_a("a32"), "ae": lambda: self.step_a("ae"),
                    "c": lambda: self._run("c"), "ce": lambda: self._run("ce")}[variant]
        self._sync()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            step()
        self._sync()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if workers:
            del batches, step  # shuts the workers down before the next variant runs
        return wall, None if workers else cpu

    def warm_up(self, steps: int = WARMUP_STEPS + 2):
        """Enough steps of every variant that the captured ones have been captured and replayed."""
        for _ in range(steps):
            for v in [v for v in self.steps if v != "b"] + (["b0"] if 0 in self.workers else []):
                self.sample(v, 1)


def _rate(samples: list, batch_size: int) -> float:
    """Images/s over some [wall seconds, CPU seconds, steps] samples."""
    return batch_size * sum(x[2] for x in samples) / sum(x[0] for x in samples)


def _rotate(items: list, k: int) -> list:
    k %= max(1, len(items))
    return items[k:] + items[:k]


def run_benchmark(sizes=(28, 64), batch_size: int = 256, steps: int = 5, repeats: int = 5, methods=METHODS,
                  out=None, workers=(0, 2), max_images: int | None = None, device: torch.device | None = None,
                  recipe: str = "matched", amp: bool = True, stem: str = "imagenet", echo: bool = True) -> list[dict]:
    """Time a, b (for each ``workers`` count) and c per size and method; print the table; return its rows.

    On the CPU, a, c and ``b`` without workers are interleaved step by step (each repeat: ``steps`` rounds of one
    step each, in rotating order), so that load from other processes hits them alike; a loader with workers is
    timed as a block of ``steps`` steps per repeat. On CUDA every variant is timed in blocks of ``steps`` steps
    (the host synchronises only around a block). Images/s is the median over the samples; ``b`` is the standard
    recipe with its fastest worker count. Rows also hold CPU-time ratios (process time of a, c and b0), which
    other load on the machine barely moves. ``out`` appends the rows as JSON lines.
    """
    sizes = check_choices("sizes", list(sizes), SIZES)
    methods = check_choices("methods", list(methods), METHODS)
    check_number("batch_size", batch_size, low=2, integer=True)
    check_number("steps", steps, low=1, integer=True)
    check_number("repeats", repeats, low=1, integer=True)
    workers = check_numbers("workers", list(workers), low=0, integer=True)
    check_choice("recipe", recipe, RECIPES)
    check_choice("stem", stem, STEMS)
    device = device or default_device()
    say = print if echo else (lambda *a, **k: None)
    mixed = amp and precision(device) == "bf16"  # then medlib's step is also timed in float32 (a32)
    eager = ["ae", "ce"] if cuda_graphs(device) else []  # a and c without CUDA graphs
    variants = ["a"] + (["a32"] if mixed else []) + [f"b{w}" for w in workers] + ["c"] + eager
    by_step = device.type == "cpu"
    fine = [v for v in variants if v in ("a", "a32", "c", "b0")] if by_step else []
    blocks = [v for v in variants if v not in fine]
    rows = []
    say(f"device: {describe_device(device)}; ResNet-18, {stem} stem; batch {batch_size}; "
        f"{repeats} repeats x {steps} steps, "
        f"{'interleaved step by step (loaders with workers: one block per repeat)' if by_step else 'in blocks'}; "
        f"steps in {'bf16 autocast (a32: float32)' if mixed else 'float32'}"
        f"{', a, a32 and c as CUDA graphs (ae, ce: a and c eager)' if eager else ''}; "
        f"images/s = source images (2 views each) per second, median; lightly transforms: {recipe}")
    for size in sizes:
        images, note = bench_images(size, max_images=max_images)
        bs = min(batch_size, len(images))
        say(f"{size} px: {note}")
        for method in methods:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            runner = Runner(method, images, bs, device, workers, recipe=recipe, amp=mixed, stem=stem)
            runner.warm_up()
            samples = {v: [] for v in variants}  # [wall seconds, CPU seconds or None, steps]
            for r in range(repeats):
                for k in range(steps if fine else 0):
                    for v in _rotate(fine, r * steps + k):
                        samples[v].append([*runner.sample(v, 1), 1])
                for v in _rotate(blocks, r):
                    samples[v].append([*runner.sample(v, steps), steps])
                say(f"  {method} repeat {r + 1}/{repeats}: images/s " + ", ".join(
                    f"{v} {_rate(samples[v][-(steps if v in fine else 1):], bs):.0f}" for v in variants), flush=True)
            rate = {v: statistics.median(bs * n / wall for wall, _, n in x) for v, x in samples.items()}
            cpu = {v: statistics.median(bs * n / c for _, c, n in x) for v, x in samples.items()
                   if x[0][1] is not None}
            best_b = max((f"b{w}" for w in workers), key=rate.get) if workers else None
            row = {"size": size, "method": method, "stem": stem, "recipe": recipe, "batch_size": bs, "steps": steps,
                   "amp": mixed, "peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2 ** 20
                   if device.type == "cuda" else None,
                   "repeats": repeats, "threads": torch.get_num_threads(),
                   "images": note, "device": describe_device(device), "torch": torch.__version__,
                   "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                   "a": rate["a"], "c": rate["c"], "a_over_c": rate["a"] / rate["c"],
                   **{f"b_workers{w}": rate[f"b{w}"] for w in workers},
                   "b": rate[best_b] if best_b else None, "b_workers": int(best_b[1:]) if best_b else None,
                   "a_over_b": rate["a"] / rate[best_b] if best_b else None,
                   "a_fp32": rate.get("a32"), "bf16_gain": rate["a"] / rate["a32"] if mixed else None,
                   "a_eager": rate.get("ae"), "c_eager": rate.get("ce"),
                   "graph_gain": rate["a"] / rate["ae"] if eager else None,
                   "cpu_images_per_s": cpu,
                   "cpu_a_over_c": cpu["a"] / cpu["c"] if "a" in cpu and "c" in cpu else None,
                   "cpu_a_over_b0": cpu["a"] / cpu["b0"] if "a" in cpu and "b0" in cpu else None,
                   "samples": samples}
            if fine and "a" in fine and "c" in fine:  # a and c timed in the same round, moments apart
                pairs = zip(samples["a"], samples["c"])
                row["a_over_c_paired"] = statistics.median(c[0] / a[0] for a, c in pairs)
            rows.append(row)
            del runner  # its steps close over it: collect the cycle now, or its graphs' memory pools outlive it
            gc.collect()
            if out:
                with open(Path(out), "a") as f:
                    f.write(json.dumps(row) + "\n")
    say(table(rows, workers))
    return rows


def table(rows: list[dict], workers=(0, 2)) -> str:
    """The benchmark's rows as a fixed-width text table: images/s, ratios, and CPU-time ratios."""
    head = ["size", "method", "a medlib"] + [f"b lightly w={w}" for w in workers] + ["c compute", "a/b", "a/c",
                                                                                     "cpu a/b0", "cpu a/c"]
    memory = any(r.get("peak_memory_mib") for r in rows)
    gain = any(r.get("bf16_gain") for r in rows)
    graphs = any(r.get("graph_gain") for r in rows)
    head += (["a fp32", "bf16 gain"] if gain else []) + (["a eager", "c eager", "graph gain"] if graphs else []) \
        + (["peak MiB"] if memory else [])
    lines = [head]

    def ratio(x):
        return "-" if x is None else f"{x:.2f}"

    for r in rows:
        b = [f"{r[f'b_workers{w}']:.0f}" for w in workers]
        lines.append([f"{r['size']}", r["method"], f"{r['a']:.0f}", *b, f"{r['c']:.0f}", ratio(r["a_over_b"]),
                      ratio(r["a_over_c"]), ratio(r["cpu_a_over_b0"]), ratio(r["cpu_a_over_c"])]
                     + ([f"{r['a_fp32']:.0f}" if r.get("a_fp32") else "-", ratio(r.get("bf16_gain"))] if gain else [])
                     + ([f"{r['a_eager']:.0f}", f"{r['c_eager']:.0f}", ratio(r["graph_gain"])] if graphs else [])
                     + ([f"{r['peak_memory_mib']:.0f}"] if memory else []))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in lines)


def main(argv: list[str] | None = None) -> int:
    """The command line; a bad option or missing data is one line on stderr (exit 2 / 1)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 64])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--methods", nargs="+", help=f"{', '.join(METHODS)} (default: all)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="DataLoader worker counts tried for the standard recipe (b is the fastest)")
    parser.add_argument("--no-amp", dest="amp", action="store_false",
                        help="float32 even where the device has native bf16")
    parser.add_argument("--stem", default="imagenet", help="ResNet-18 stem: imagenet (quick profile) or cifar (full)")
    parser.add_argument("--out", help="append the results as JSON lines to this file")
    args = parser.parse_args(argv)
    try:
        run_benchmark(args.sizes, args.batch_size, args.steps, args.repeats, args.methods or METHODS, args.out,
                      workers=args.workers, amp=args.amp, stem=args.stem)
    except (ParameterError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ParameterError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
