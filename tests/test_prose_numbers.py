"""The measured numbers of README, benchmarks/README.md and benchmarks/medmnist_baseline.md are held to the records
they come from: the benchmark rows and logs under benchmarks/results/, the executed book pages, MedMNIST's split
sizes. Each test recomputes the quoted text from its record and asserts the prose says it.

Book/methods.md's numbers are held in tests/test_methods_doc.py, README's "Results at a glance" in
tests/test_prose.py."""

import re
import statistics

import pytest
from prose_sources import (RESULTS, ROOT, decimals, flat, graph_check, jsonl, missing, notebook_outputs, rounded, section,
                           span, table, wall_clock)

README = (ROOT / "README.md").read_text()
BENCH = (ROOT / "benchmarks" / "README.md").read_text()
BASELINE = (ROOT / "benchmarks" / "medmnist_baseline.md").read_text()
METHOD = {"simclr": "SimCLR", "byol": "BYOL"}


def rows(path: str) -> list[dict]:
    return jsonl(RESULTS / path)


def by(path: str) -> dict:
    """A benchmark file's rows by (method, size, batch)."""
    return {(r["method"], r["size"], r["batch_size"]): r for r in rows(path)}


# --- the throughput tables of benchmarks/README.md ------------------------------------------------------------

COUNT = {"a medlib": "a", "a eager": "a_eager", "b lightly, 0 workers": "b_workers0", "b lightly, 2 workers": "b_workers2",
         "b lightly, 15 workers": "b", "c compute": "c", "c eager": "c_eager", "a fp32": "a_fp32"}
RATIO = {"a/b": "a_over_b", "a/c": "a_over_c", "graph gain": "graph_gain", "bf16 gain": "bf16_gain",
         "CPU-time a/b0": "cpu_a_over_b0", "CPU-time a/c": "cpu_a_over_c"}
TABLES = {  # section heading: the benchmark rows its table quotes
    "### CPU: this 2-core machine, bf16 autocast": "2026-11-26/cpu_bf16_bench.jsonl",
    "### CPU: 64 px on an AVX2-only VM": "2026-11-27/cpu_avx2_64px_bench.jsonl",
    "### CPU: 28 px on an AVX2-only VM": "2026-11-27/cpu_avx2_28px_bench.jsonl",
    "### CPU: this 2-core machine, float32": "2026-11-26/cpu_bench.jsonl",
    "### GPU: one NVIDIA H100 80GB HBM3, one-call views": "2026-11-27/gpu_h100_fdd3ce1/bench.jsonl",
    "### GPU: the full profile's step": "2026-11-27/gpu_h100_full_profile/bench.jsonl",
    "### GPU: one NVIDIA H100 80GB HBM3, the step as a CUDA graph": "2026-11-27/gpu_h100/bench.jsonl",
    "### GPU: one NVIDIA H100 80GB HBM3 (2026-11-26)": "2026-11-26/gpu_h100/bench_40steps.jsonl",
}


def quoted_row(head: list[str], row: dict, cells: list[str]) -> list[str]:
    """A benchmark row as a table with ``head`` quotes it: images/s to the unit, ratios to the decimals the table
    gives (the value is the row's; only the precision is read from the quote)."""
    out = []
    for name, cell in zip(head, cells):
        if name in ("size", "batch"):
            out.append(str(row["size" if name == "size" else "batch_size"]))
        elif name in ("method", "stem"):
            out.append(METHOD[row["method"]] if name == "method" else row["stem"])
        elif name in COUNT:
            out.append(rounded(row[COUNT[name]], 0, thousands=True))
        elif name in RATIO:
            out.append(rounded(row[RATIO[name]], decimals(cell)))
        elif name == "peak memory":
            out.append(f"{rounded(row['peak_memory_mib'], 0, thousands=True)} MiB")
        else:
            raise AssertionError(f"a column the test does not know: {name}")
    return out


@pytest.mark.parametrize("heading", TABLES)
def test_each_throughput_table_is_its_benchmark_rows(heading):
    head, body = table(section(BENCH, heading), "| size |")
    records = rows(TABLES[heading])
    assert len(body) == len(records)
    assert body == [quoted_row(head, r, cells) for r, cells in zip(records, body)]


def test_the_cpu_notes_are_their_rows():
    bf16, fp32 = by("2026-11-26/cpu_bf16_bench.jsonl"), by("2026-11-26/cpu_bench.jsonl")
    avx64, avx28 = by("2026-11-27/cpu_avx2_64px_bench.jsonl"), by("2026-11-27/cpu_avx2_28px_bench.jsonl")

    def at(runs, size, key):
        return [r[key] if isinstance(key, str) else key(r) for (_, s, _), r in runs.items() if s == size]

    def free(r):  # how much faster free augmentation (c) is than the standard recipe (b)
        return r["c"] / r["b"]

    def pil_ms(r):  # b0's time per image beyond c's
        return 1000 * (1 / r["b_workers0"] - 1 / r["c"])

    sim, byol = ("simclr", 28, 256), ("byol", 28, 256)
    before = flat(section(BENCH, "### CPU: the step refactor"))
    said = [  # bf16 on the AVX-512 BF16 machine
        f"met** at both sizes ({span(at(bf16, 28, 'a_over_c') + at(bf16, 64, 'a_over_c'))};",
        f"({rounded(bf16[sim]['a_over_b'], 2)} SimCLR, {rounded(bf16[byol]['a_over_b'], 2)} BYOL; float32: "
        f"{rounded(fp32[sim]['a_over_b'], 2)} and {rounded(fp32[byol]['a_over_b'], 2)})",
        f"**Still not met at 64 px** ({span(at(bf16, 64, 'a_over_b'))})",
        f"free augmentation (c) is only {span(at(bf16, 64, free))}x faster than the standard recipe in bf16",
        f"{span(at(bf16, 28, 'bf16_gain'))}x for medlib's whole step at 28 px and {span(at(bf16, 64, 'bf16_gain'))}x "
        "at 64 px",
        # 64 px, AVX2
        f"vary from {rounded(min(256 * s[2] / s[0] for r in avx64.values() for s in r['samples']['b2']))} to "
        f"{rounded(max(256 * s[2] / s[0] for r in avx64.values() for s in r['samples']['b2']))} images/s",
        f"**a/c ≥ 0.90: met** ({span(at(avx64, 64, 'a_over_c'))})",
        f"Free augmentation (c) is only {span(at(avx64, 64, free))}x faster than the standard recipe here "
        f"({span(at(bf16, 64, free))}x on the bf16 machine, 2026-11-26)",
        # 28 px, AVX2
        f"**a/c ≥ 0.90: met** ({span(at(avx28, 28, 'a_over_c'))})",
        f"**a/b ≥ 1.3: not met at 28 px either on this VM** ({span(at(avx28, 28, 'a_over_b'))})",
        f"only {rounded(free(avx28[sim]), 2)}x (SimCLR) and {rounded(free(avx28[byol]), 2)}x (BYOL) the standard recipe",
        f"the network's step is {span([fp32[k]['c'] / avx28[k]['c'] for k in (sim, byol)], 1)}x slower here "
        f"(c: {rounded(avx28[sim]['c'])} against {rounded(fp32[sim]['c'])} images/s for SimCLR)",
        f"the PIL work only {span([pil_ms(avx28[k]) / pil_ms(fp32[k]) for k in (sim, byol)], 1)}x (b0's time per "
        f"image beyond c's: {rounded(pil_ms(avx28[sim]), 1)} against {rounded(pil_ms(fp32[sim]), 1)} ms for SimCLR)",
        "the pipeline's share of the standard recipe's step falls from "
        f"{span([100 * (1 - fp32[k]['b_workers0'] / fp32[k]['c']) for k in (sim, byol)], 0)} % to "
        f"{span([100 * (1 - avx28[k]['b_workers0'] / avx28[k]['c']) for k in (sim, byol)], 0)} %",
        f"at 28 px in bf16 on the AVX-512 BF16 machine ({span(at(bf16, 28, 'a_over_b'))}, above); in float32 there "
        f"it was {rounded(1.3 - fp32[sim]['a_over_b'], 2)} short for SimCLR ({rounded(fp32[sim]['a_over_b'], 2)})",
        # float32 on the AVX-512 BF16 machine
        f"at both sizes ({span(at(fp32, 28, 'a_over_c'))} at 28 px, {span(at(fp32, 64, 'a_over_c'))} at 64 px): "
        f"drawing the views costs {span([100 * (1 - r['a_over_c']) for r in fp32.values()], 0)} % of a step",
        f"met at 28 px for BYOL ({rounded(fp32[byol]['a_over_b'], 2)}), "
        f"{rounded(1.3 - fp32[sim]['a_over_b'], 2)} short for SimCLR ({rounded(fp32[sim]['a_over_b'], 2)}); "
        f"not met at 64 px ({span(at(fp32, 64, 'a_over_b'))})",
        f"even free augmentation (`c`) is only {rounded(free(fp32['simclr', 64, 256]), 2)}x faster than the standard "
        "recipe at 64 px",
    ]
    assert missing(BENCH, said) == []
    log = (RESULTS / "2026-11-27" / "cpu_before_after_graphs.log").read_text()
    runs = [dict(re.findall(r"^\s+28\s+(simclr|byol)\s+(\d+)", block, re.M))
            for block in re.split(r"^== \w+\n", log, flags=re.M)[1:]]  # before, after, before, after
    assert missing(before, [
        f"SimCLR, {runs[0]['byol']} / {runs[2]['byol']} before and {runs[1]['byol']} / {runs[3]['byol']} after for BYOL",
        f"ran at {runs[0]['simclr']} / {runs[2]['simclr']} images/s before and "
        f"{runs[1]['simclr']} / {runs[3]['simclr']} after for SimCLR"]) == []


def test_the_gpu_notes_are_their_rows():
    fdd, graphs = by("2026-11-27/gpu_h100_fdd3ce1/bench.jsonl"), by("2026-11-27/gpu_h100/bench.jsonl")
    full, first = rows("2026-11-27/gpu_h100_full_profile/bench.jsonl"), by("2026-11-26/gpu_h100/bench_40steps.jsonl")
    ten = rows("2026-11-26/gpu_h100/bench.jsonl")  # 10-step blocks, one of them in float32
    sim = ("simclr", 28, 256)

    def of(runs, key, batch=None, method=None):
        return [r[key] for (m, _, b), r in runs.items() if batch in (None, b) and method in (None, m)]

    def gain(key, new, old, **where):  # percent by which the second run is faster than the first
        return [100 * (new[k][key] / old[k][key] - 1) for k in new
                if all(dict(zip(("method", "size", "batch"), k))[w] == v for w, v in where.items())]

    def thousands(x):
        return rounded(x, 0, thousands=True)

    checked, one_draw = graph_check("2026-11-27/gpu_h100/graph_check.log"), graph_check(
        "2026-11-27/gpu_h100/graph_check_one_draw.log")
    current = graph_check("2026-11-27/gpu_h100_fdd3ce1/graph_check.log")
    arms = ("tl", "ssl-simclr", "ssl-byol")
    said = [  # the second run, one-call views
        f"a/c ≥ 0.85 ({span(of(fdd, 'a_over_c'), 3)}) and a/b ≥ 5 ({span(of(fdd, 'a_over_b'), 1)})",
        f"went from {rounded(graphs[sim]['a_over_c'], 3)} to {rounded(fdd[sim]['a_over_c'], 3)}: the views now cost "
        f"{rounded(100 * (1 - fdd[sim]['a_over_c']))} % of a graphed SimCLR step instead of "
        f"{rounded(100 * (1 - graphs[sim]['a_over_c']))} %",
        f"is the same within {rounded(max(abs(x) for x in gain('c', fdd, graphs)), 1)} % in every row "
        f"({thousands(fdd[sim]['c'])} against {thousands(graphs[sim]['c'])} images/s for SimCLR at 28 px)",
        f"got {rounded(gain('a', fdd, graphs, method='simclr', size=28, batch=256)[0], 1)} % faster at 28 px, batch 256 "
        f"({thousands(fdd[sim]['a'])} against {thousands(graphs[sim]['a'])}), "
        f"{rounded(gain('a', fdd, graphs, method='simclr', size=64)[0], 1)} % at 64 px and "
        f"{rounded(gain('a', fdd, graphs, method='simclr', batch=1024)[0], 1)} % at batch 1024",
        f"moved {span(gain('a', fdd, graphs, method='byol'), 1)} %",
        "ran at {} images/s (TL / SimCLR / BYOL), {}x the eager epoch".format(
            " / ".join(thousands(current[a][0]) for a in arms), span([current[a][2] for a in arms], 1)),
        # the full profile's step
        f"A step takes {rounded(1000 * 512 / full[0]['a'])} ms (SimCLR) and {rounded(1000 * 512 / full[1]['a'])} ms "
        f"(BYOL), medlib's views cost {rounded(100 * (1 - full[0]['a_over_c']))} % of it (a/c "
        f"{span([r['a_over_c'] for r in full])}), and a CUDA graph gains nothing ({span([r['graph_gain'] for r in full])})",
        f"bf16 autocast pays most here: {rounded(full[0]['bf16_gain'], 2)}x and {rounded(full[1]['bf16_gain'], 2)}x",
        f"(a/b {rounded(full[0]['a_over_b'], 2)} and {rounded(full[1]['a_over_b'], 2)}). Its 15 loader workers deliver "
        f"{span([r['b'] / 1000 for r in full], 1)}k images/s",
        f"even free views (c) are only {rounded(full[0]['c'] / full[0]['b'], 2)}x and "
        f"{rounded(full[1]['c'] / full[1]['b'], 2)}x the standard recipe",
        f"and BYOL's peak was {thousands(full[1]['peak_memory_mib'])} MiB",
        # the step as a CUDA graph
        f"{span(of(graphs, 'a_over_b', 256), 1)} at batch 256 and {span(of(graphs, 'a_over_b', 1024), 1)} at batch 1024 "
        f"(was {span(of(first, 'a_over_b', 256), 1)} and {span(of(first, 'a_over_b', 1024), 1)})",
        f"medlib's step is {span(of(graphs, 'graph_gain'), 1)}x faster than the same step eager",
        f"its loader tops out at {span([x / 1000 for x in of(graphs, 'b')], 1)}k images/s",
        f"met for BYOL ({span(of(graphs, 'a_over_c', method='byol'))}) and for SimCLR at 64 px and at batch 1024 "
        f"({span([graphs['simclr', 64, 256]['a_over_c'], graphs['simclr', 28, 1024]['a_over_c']])}); SimCLR at "
        f"28 px, batch 256, is {rounded(0.85 - graphs[sim]['a_over_c'], 3)} short ({rounded(graphs[sim]['a_over_c'], 3)})",
        f"(about {rounded(1000 * 256 * (1 / graphs[sim]['a'] - 1 / graphs[sim]['c']), 1)} ms of a "
        f"{rounded(1000 * 256 / graphs[sim]['a'], 1)} ms SimCLR step at 28 px)",
        f"runs at the same speed: {thousands(graphs[sim]['a_eager'])} against {thousands(first[sim]['a'])} images/s",
        f"{span(of(graphs, 'bf16_gain', 256)[:2])}x at 28 px, batch 256, {span(of(graphs, 'bf16_gain', 256)[2:])}x "
        f"at 64 px and {span(of(graphs, 'bf16_gain', 1024))}x at batch 1024",
        f"rises to {span([x / 1024 for x in of(graphs, 'peak_memory_mib')], 1)} GiB",
        "the last epoch ran {}x (TL: {} against {} images/s), {}x (SimCLR: {} / {}) and {}x (BYOL: {} / {}) faster".format(
            *(f"{x:.2f}" if i == 0 else thousands(x) for a in arms for i, x in enumerate(
                (checked[a][2], checked[a][0], checked[a][1])))),
        "at {} images/s graphed".format(" / ".join(thousands(one_draw[a][0]) for a in arms)),
        # 2026-11-26, eager
        f"takes about {span([1000 * 256 / first[sim]['c'], 1000 * 1024 / first['simclr', 28, 1024]['c']], 0)} ms per "
        f"step at batch 256 *and* at batch 1024 ({rounded(first[sim]['c'] / 1000)}k vs "
        f"{rounded(first['simclr', 28, 1024]['c'] / 1000)}k images/s)",
        f"**a/c**: {span(of(first, 'a_over_c', method='simclr'))} for SimCLR (goal 0.85: met at 28 px, "
        f"{rounded(0.85 - first['simclr', 64, 256]['a_over_c'], 2)} short at 64 px), "
        f"{span(of(first, 'a_over_c', method='byol'))} for BYOL",
        f"costs a launch-bound step {span([100 * (1 - x) for x in of(first, 'a_over_c')], 0)} %",
        f"**a/b**: {span(of(first, 'a_over_b', 1024), 1)} at batch 1024 (goal 5: met), "
        f"{span(of(first, 'a_over_b', 256), 1)} at batch 256",
        f"tops out at {span([x / 1000 for x in of(first, 'b')], 1)}k images/s with all 15 workers",
        "float32 `a` ran at {} images/s against {} with bf16".format(
            *(thousands(next(r["a"] for r in ten if r["amp"] is amp and r["method"] == "simclr" and r["size"] == 28
                             and r["batch_size"] == 256)) for amp in (False, True))),
        f"is {rounded(6334 * 3 * 28 * 28 / 1e6)} MB (6,334 x 3 x 28 x 28); a step peaks at "
        f"{span(of(first, 'peak_memory_mib'), 0)} MiB",
    ]
    assert "(6334 real images)" in first[sim]["images"]
    assert missing(BENCH, said) == []
    out = (RESULTS / "2026-11-27" / "gpu_h100_full_profile" / "bench_full_before_gc.log").read_text()
    before = {v: statistics.median(map(int, re.findall(rf"simclr repeat \d/5: .*\b{v} (\d+)", out))) for v in "ac"}
    assert all(abs(before[v] / full[0][v] - 1) < 0.001 for v in "ac")
    capacity, pools = re.search(r"total capacity of ([\d.]+) GiB.*?([\d.]+) GiB allocated in private pools", out).groups()
    assert missing(BENCH, [f"out of the H100's {rounded(capacity, 1)} GiB, with {rounded(pools, 1)} GiB held in graph pools",
                           "its SimCLR a and c equal those above within 0.1 %"]) == []


def test_the_gpu_pages_pretraining_rates_in_the_notes():
    """The full-budget pre-training on the book page *On a GPU* (book/gpu/02_pretraining_full.ipynb)."""
    rates = gpu_page_rates()
    said = ["100 epochs on {} pool images".format(rounded(rates["TL (supervised)"][0], 0, thousands=True)),
            "TL {}, SimCLR {}, BYOL {} images/s; {}, {} and {} s of training per arm".format(
                *(rounded(rates[a][3], 0, thousands=True) for a in GPU_ARMS), *(rates[a][2] for a in GPU_ARMS))]
    assert missing(BENCH, said) == []


GPU_ARMS = ("TL (supervised)", "SSL SimCLR", "SSL BYOL")


def gpu_page_rates() -> dict:
    """``{arm: (images, epochs, wall s, images/s)}`` from the pre-training table of the book page *On a GPU*."""
    table_text = next(t for t in notebook_outputs(ROOT / "book" / "gpu" / "02_pretraining_full.ipynb")
                      if "wall time (s)" in t)
    return {arm: tuple(re.search(rf"^{re.escape(arm)}\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)", table_text, re.M).groups())
            for arm in GPU_ARMS}


def test_the_full_profiles_expected_gpu_time_is_its_runs_at_the_measured_rates():
    """The full profile's pre-training cost in README ("Profiles", "Running the full profile on a Slurm cluster")
    and in the benchmark notes: each distinct pre-training of ``compute --profile full`` at the rate measured for
    its method's step (benchmarks/results/2026-11-27/gpu_h100_full_profile/), TL's at its lead over SimCLR on the
    book page *On a GPU*, VICReg and the bridge's SimCLR phase at SimCLR's; pools sized by MedMNIST's split sizes."""
    from medmnist import INFO

    from medlib import plan
    from medlib.profiles import parameters

    full = {r["method"]: r["a"] for r in rows("2026-11-27/gpu_h100_full_profile/bench.jsonl")}
    page = gpu_page_rates()
    lead = int(page["TL (supervised)"][3]) / int(page["SSL SimCLR"][3])
    rate = {"tl": full["simclr"] * lead, "ssl-simclr": full["simclr"], "ssl-byol": full["byol"],
            "ssl-vicreg": full["simclr"], "bridge-simclr": full["simclr"]}
    P = parameters(profile="full")
    pretrainings = [c for c in plan.chapter_runs(P)[0] if c.arm != "fusion"]
    assert {c.arm for c in pretrainings} == set(rate) and all(c.max_images is None for c in pretrainings)

    def images(sources):
        return sum(INFO[f]["n_samples"]["train"] for f in sources)

    def hours(n, arm, epochs=P.pretrain_epochs):
        return n * epochs / rate[arm] / 3600

    pools = {c.sources: images(c.sources) for c in pretrainings}
    targets = {tuple(c.sources) for c in plan.chapter_runs(P, ["03_head_to_head"])[0]}
    big = [pools[s] for s in targets]
    small = [c for c in pretrainings if c.sources not in targets]
    mean = statistics.mean(big)
    per_pool = sum(hours(mean, arm) for arm in rate)
    on_targets = sum(hours(pools[c.sources], c.arm) for c in pretrainings if c.sources in targets)
    on_domain = sum(hours(pools[c.sources], c.arm) for c in small)
    three = sum(hours(n, arm) for n in big for arm in ("tl", "ssl-simclr", "ssl-byol"))
    grid, runs, measured = re.search(r"\): ([\d.]+) h x (\d+) / (\d+)\.", README).groups()  # an assumed rate
    adaptation = float(grid) * int(runs) / int(measured)

    def thousand(n):
        return rounded(round(n, -3), 0, thousands=True)

    said_readme = [
        f"{thousand(min(big))}-{thousand(max(big))} train images each",
        f"SimCLR {rounded(full['simclr'], 0, thousands=True)} and BYOL {rounded(full['byol'], 0, thousands=True)} "
        f"images/s, i.e. {rounded(hours(mean, 'ssl-simclr'), 1)} h and {rounded(hours(mean, 'ssl-byol'), 1)} h per "
        f"source pool. TL's step was not timed; at its {rounded(lead, 2)}x lead over SimCLR on the GPU page, it would "
        f"take about {rounded(hours(mean, 'tl'), 1)} h. That makes some {rounded(three)} GPU-hours for these three "
        f"methods on the six pools, and about {rounded(on_targets)} with VICReg",
        f"about **{rounded(on_targets + on_domain + adaptation)} GPU-hours** in all",
        f"**Pre-training, about {rounded(on_targets + on_domain)} h**: 100 epochs of a pool of about {thousand(mean)} "
        f"images take {rounded(hours(mean, 'ssl-simclr'), 1)} h for SimCLR, {rounded(hours(mean, 'ssl-byol'), 1)} h "
        f"for BYOL and {rounded(hours(mean, 'tl'), 1)} h for TL",
        f"TL's *estimated* at {rounded(lead, 2)}x SimCLR's",
        f"That is about {rounded(per_pool, 1)} h per target pool, {rounded(on_targets)} h for the six targets' pools "
        f"({thousand(min(big))}-{thousand(max(big))} images each), and about {rounded(on_domain, 1)} h for the "
        f"{len(small)} trained pre-trainings of `06_domain` on its four smaller pools "
        f"({rounded(min(pools[c.sources] for c in small), 0, thousands=True)} to "
        f"{rounded(max(pools[c.sources] for c in small), 0, thousands=True)} images)",
        f"**Adaptation, about {rounded(adaptation, 1)} h**",
    ]
    assert missing(README, said_readme) == []
    nominal = 430_000  # the notes' round pool size
    said_notes = [
        f"{nominal:,} images x 100 epochs is {rounded(hours(nominal, 'ssl-simclr'), 1)} h for SimCLR and "
        f"{rounded(hours(nominal, 'ssl-byol'), 1)} h for BYOL per source pool",
        "it ran {}x as fast as SimCLR ({} against {} images/s at 28 px); the same ratio would give about {} h".format(
            rounded(lead, 2), *(rounded(page[a][3], 0, thousands=True) for a in GPU_ARMS[:2]),
            rounded(hours(nominal, "tl"), 1)),
        "that is about {} h per pool and {} GPU-hours for the six pools".format(
            rounded(sum(hours(nominal, a) for a in ("tl", "ssl-simclr", "ssl-byol")), 1), rounded(three)),
    ]
    assert missing(BENCH, said_notes) == []


def chapter_seconds(log: str) -> dict:
    """``{chapter: seconds}`` from a book run's log (the last line of each chapter wins)."""
    return dict(re.findall(r"^\[\d+/\d+\] (\d\d)_\w+ \(\w+\) \.\.\. done in ([\d.]+) s", log, re.M))


def test_the_book_and_job_timings_are_their_logs():
    bf16 = (RESULTS / "2026-11-26" / "cpu_quick_book_bf16.log").read_text()
    minutes, seconds = wall_clock(bf16)
    per = chapter_seconds(bf16)
    fp32 = (RESULTS / "2026-11-27" / "cpu_quick_book_fp32.log").read_text()
    sitting1, sitting2 = fp32.split("# sitting 2")
    cold = {**chapter_seconds(sitting1), **{k: v for k, v in chapter_seconds(sitting2).items() if k >= "06"}}
    total = re.search(r"Cold total: .*: about (\d+ h \d+ min)\.", fp32).group(1)
    notes = [
        f"**The quick book:** {minutes} min {rounded(seconds)} s cold in bf16",
        "chapters 2-7: {}; log: `results/2026-11-26/cpu_quick_book_bf16.log`".format(
            " / ".join(rounded(per[f"0{i}"]) for i in range(2, 8)) + " s"),
        f"the same book took **{minutes} min {rounded(seconds)} s cold in bf16**",
        "chapters 2 / 3 / 4 / 5 / 6 / 7 took {} / {}+ / {} s, about **{} cold** in all".format(
            " / ".join(rounded(cold[f"0{i}"], 0, thousands=True) for i in range(2, 6)), rounded(cold["06"]),
            rounded(cold["07"]), total),
    ]
    assert missing(BENCH, notes) == []
    assert missing(README, [f"the whole book took {rounded(int(minutes) + float(seconds) / 60)} min cold on a 2-core AMD",
                            f"and about {total} on a 2-core EPYC with AVX2 only"]) == []
    jobs = (RESULTS / "2026-11-28" / "cpu_compute_jobs.log").read_text()
    (one, n, _), (two, _, gain) = re.findall(r"^--jobs \d:\s+([\d.]+) s wall, (\d+) computed.*speed-up ([\d.]+)x",
                                             jobs, re.M)
    loads = [float(x) for x in re.findall(r"load average: ([\d.]+),", jobs)]
    assert missing(README, [
        f"took {rounded(one)} s with `--jobs 1` and {rounded(two)} s with `--jobs 2` ({gain}x;",
        f"under a load average of {span(loads, 1)}:"]) == []
    pre, adapt = re.search(r"\((\d+) pre-trainings and (\d+)\s+adaptations;", README).groups()
    assert int(pre) + int(adapt) == int(n)  # the runs each job count computed


def test_the_gpu_study_smoke_run_is_its_log():
    log = (RESULTS / "2026-11-28" / "cpu_gpu_study_smoke.log").read_text()
    run1, run2 = log.split("# run 2", 1)
    speedup = dict(re.findall(r"^02_pretraining\t(\d)\t(\d+)\t", run1, re.M))
    cut = re.search(r"^03_head_to_head\t\d\t(\d+)\t124\t", run1, re.M).group(1)
    archived, listed = re.search(r"^(\d+) runs of .* under /\S+/archive;.*\n(\d+) runs not stored yet", run1, re.M).groups()
    imported, left_out = re.search(r"^(\d+) runs imported, \d+ already stored, (\d+) pre-trainings left out", run2,
                                   re.M).groups()
    computed, failed = re.search(r"^03_head_to_head\t\d\t\d+\t0\t(\d+) computed, \d+ already stored, (\d+) failed",
                                 run2, re.M).groups()
    assert failed == "0"
    said = [f"The first run's 400 s deadline cut chapter 03 after {cut} s",
            f"the archive it left held {archived} runs and listed {listed} as missing",
            f"imported it ({imported} runs; the {left_out} pre-trainings",
            f"computed the {computed} missing runs of chapter 03 with none failed",
            f"took {speedup['1']} s with one job and {speedup['2']} s with two"]
    assert missing(BENCH, said) == []


def test_the_medmnist_baseline_is_its_log():
    """benchmarks/medmnist_baseline.md quotes the baseline's log (benchmarks/results/2026-11-26/gpu_h100/), and README
    its largest gap to the published AUC."""
    from medmnist import INFO

    log = (RESULTS / "2026-11-26" / "gpu_h100" / "baseline.log").read_text()
    logged = log[log.index("## 2026-11-26"):].strip()
    assert logged in BASELINE
    head, body = table(logged, "| dataset |")
    run = {r[0]: dict(zip(head, r)) for r in body}
    gaps = [float(r["ΔAUC"]) for r in run.values()]
    acc = [float(r["published AUC / ACC"].split(" / ")[1]) - float(r["test ACC (ours)"].split(" ± ")[0])
           for r in run.values()]
    breast = run["breastmnist"]
    said = ["All three means are within the goal of 0.03 AUC",
            f"RetinaMNIST ({rounded(run['retinamnist']['ΔAUC'], 3).replace('-', '−')}) and PneumoniaMNIST "
            f"({run['pneumoniamnist']['ΔAUC']}) match, BreastMNIST is {rounded(-float(breast['ΔAUC']), 3)} below with a "
            f"seed spread of {breast['test AUC (ours)'].split(' ± ')[1]}",
            f"i.e. the published {breast['published AUC / ACC'].split(' / ')[0]} lies within our seed range",
            f"Test ACC is {span(acc, 3)} below the published values",
            "({} BreastMNIST, {}\nRetinaMNIST test images)".format(
                *(INFO[f]["n_samples"]["test"] for f in ("breastmnist", "retinamnist")))]
    assert max(abs(g) for g in gaps) <= 0.03
    assert missing(BASELINE, said) == []
    # the per-seed AUCs the prediction files' names showed are not in the log; they must give its mean and s.d.
    seeds = [float(x) for x in re.search(r"per seed ([\d.]+), ([\d.]+) and ([\d.]+)", BASELINE).groups()]
    mean, sd = (float(x) for x in breast["test AUC (ours)"].split(" ± "))
    assert abs(statistics.mean(seeds) - mean) <= 0.0005 + 1e-9 and abs(statistics.stdev(seeds) - sd) <= 0.0005 + 1e-9
    assert float(breast["published AUC / ACC"].split(" / ")[0]) <= max(seeds)
    assert missing(README, [f"test AUC within {rounded(max(abs(g) for g in gaps), 2)} on all three datasets"]) == []


def test_the_rate_sweep_and_the_bench_images_in_the_notes_are_their_records():
    from medmnist import INFO

    folder = RESULTS / "2026-11-29" / "cpu_pretrain_lr_quick"
    sweep = {(r["arm"], r["scale"]): r["val_auc"] for r in jsonl(folder / "pretrain_lr.jsonl")}
    gains = [sweep[a, 0.5] - sweep[a, 1.0] for a, _ in sweep]
    took = re.search(r"^chosen pretrain_lrs: .*?; (\d+) s;", (folder / "pretrain_lr.log").read_text(), re.M).group(1)
    images = {r["size"]: re.search(r"\((\d+) real images\)", r["images"]).group(1)
              for path in ("2026-11-26/cpu_bench.jsonl", "2026-11-27/gpu_h100_full_profile/bench.jsonl")
              for r in rows(path)}
    said = [f"2026-11-29, {took} s (the x1 runs were already stored): half the rate scored highest for every arm, by "
            f"{rounded(min(gains), 2)} to {rounded(max(gains), 2)} val AUC, on {INFO['breastmnist']['n_samples']['val']} "
            "val images",
            f"the train splits of breastmnist + pneumoniamnist + retinamnist ({rounded(images[28], 0, thousands=True)} "
            f"real images); at 64 px `breastmnist_64.npz`, the only 64 px file offline ({images[64]} real images",
            f"{images[64]} breastmnist 64 px images"]
    assert missing(BENCH, said) == []


def test_the_option_sweeps_in_the_notes_are_their_records():
    folder = RESULTS / "2026-11-29" / "cpu_pretrain_options_quick"
    took = [rounded(re.search(r"^chosen pretrain_options: .*?; (\d+) s;", (folder / o / "pretrain_options.log")
                              .read_text(), re.M).group(1), 0, thousands=True) for o in ("temperature", "momentum")]
    chosen = {(r["arm"], r["value"]) for o in ("temperature", "momentum") for r in jsonl(folder / o / "pretrain_options.jsonl")
              if r["val_auc"] == max(s["val_auc"] for s in jsonl(folder / o / "pretrain_options.jsonl") if s["arm"] == r["arm"])}
    assert chosen == {("ssl-simclr", 0.1), ("bridge-simclr", 0.2), ("ssl-byol", 0.98)}  # SimCLR's 0.1: within tolerance
    assert missing(BENCH, [f"({took[0]} s and {took[1]} s): SimCLR kept 0.5, the bridge chose 0.2 and BYOL 0.98"]) == []


def test_readmes_quick_plan_is_the_plans_run_count():
    """README's quick-profile bullet counts the runs ``plan.chapter_runs`` plans (what ``compute --dry-run``
    prints)."""
    from medlib import plan
    from medlib.profiles import parameters

    pretrainings, adaptations, _ = plan.chapter_runs(parameters(profile="quick"))
    said = f"it plans {len(pretrainings)} pre-trainings and {len(adaptations)} adaptation runs"
    assert missing(README, [said]) == []
