"""The throughput benchmark's code path on a tiny problem (a smoke test, not a timing test), and the reader of its
recorded rows: python -m benchmarks.throughput."""

import json

import pytest
import torch
from PIL import Image

from benchmarks import throughput as bench
from benchmarks import throughput_results as results
from benchmarks.throughput import main
from medlib.validation import ParameterError


pytestmark = pytest.mark.usefixtures("one_thread")


def test_benchmark_runs_every_variant_and_writes_json_lines(real_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEDLIB_PRECISION", "fp32")
    out = tmp_path / "bench.jsonl"
    rows = bench.run_benchmark([28], batch_size=8, steps=1, repeats=1, methods=["simclr", "byol"], out=out,
                               workers=(0, 1), max_images=32)
    assert [(r["size"], r["method"]) for r in rows] == [(28, "simclr"), (28, "byol")]
    for r in rows:
        samples = r["samples"]  # [wall s, CPU s, steps]: a, c and b0 step by step, b1 as one block
        assert set(samples) == {"a", "b0", "b1", "c"} and [len(samples[v]) for v in ("a", "b0", "b1", "c")] == [1] * 4
        assert all(x[0] > 0 and x[2] == 1 for v in samples.values() for x in v) and samples["b1"][0][1] is None
        assert r["cpu_a_over_c"] > 0 and r["cpu_a_over_b0"] > 0 and r["a_over_c_paired"] > 0
        assert r["b"] == max(r["b_workers0"], r["b_workers1"]) and r["b_workers"] in (0, 1)
        assert r["a_over_b"] == pytest.approx(r["a"] / r["b"]) and r["a_over_c"] == pytest.approx(r["a"] / r["c"])
        assert "32 real images" in r["images"] and r["batch_size"] == 8
    assert [json.loads(line)["method"] for line in out.read_text().splitlines()] == ["simclr", "byol"]
    table = capsys.readouterr().out.splitlines()[-3:]
    assert table[0].split() == ["size", "method", "a", "medlib", "b", "lightly", "w=0", "b", "lightly", "w=1",
                                "c", "compute", "a/b", "a/c", "cpu", "a/b0", "cpu", "a/c"]
    assert table[1].split()[:2] == ["28", "simclr"] and table[2].split()[:2] == ["28", "byol"]


def test_under_bf16_medlibs_step_is_also_timed_in_float32(real_data, capsys, monkeypatch):
    monkeypatch.setenv("MEDLIB_PRECISION", "bf16")
    row, = bench.run_benchmark([28], batch_size=8, steps=1, repeats=2, methods=["simclr"], workers=(0,),
                               max_images=32)
    assert set(row["samples"]) == {"a", "a32", "b0", "c"} and len(row["samples"]["a32"]) == 2
    assert row["amp"] and row["bf16_gain"] == pytest.approx(row["a"] / row["a_fp32"])
    assert capsys.readouterr().out.splitlines()[-2].split()[-4:] == ["a", "fp32", "bf16", "gain"]
    monkeypatch.setenv("MEDLIB_PRECISION", "fp32")
    row, = bench.run_benchmark([28], batch_size=8, steps=1, repeats=1, methods=["simclr"], workers=(0,),
                               max_images=32, echo=False)
    assert "a32" not in row["samples"] and row["bf16_gain"] is None and not row["amp"]


def test_each_methods_runner_is_gone_before_the_next_is_built(real_data, monkeypatch):
    """On CUDA a runner holds three captured graphs and their memory pools; they must not outlive its method."""
    import gc
    import weakref

    monkeypatch.setenv("MEDLIB_PRECISION", "fp32")
    built = []

    class Runner(bench.Runner):
        def __init__(self, *args, **kwargs):
            assert all(ref() is None for ref in built), "the previous method's runner is still alive"
            super().__init__(*args, **kwargs)
            built.append(weakref.ref(self))

    monkeypatch.setattr(bench, "Runner", Runner)
    gc.disable()  # only the bench's own collection may free the runners' reference cycles
    try:
        bench.run_benchmark([28], batch_size=4, steps=1, repeats=1, methods=["simclr", "byol"], workers=(0,),
                            max_images=8, echo=False)
    finally:
        gc.enable()
    assert len(built) == 2


def test_the_full_profiles_small_input_stem_is_benchmarked_and_recorded(real_data, monkeypatch):
    monkeypatch.setenv("MEDLIB_PRECISION", "fp32")
    row, = bench.run_benchmark([28], batch_size=4, steps=1, repeats=1, methods=["simclr"], workers=(0,),
                               max_images=8, stem="cifar", echo=False)
    assert row["stem"] == "cifar" and row["a"] > 0
    model, _, _ = bench.build("simclr", torch.device("cpu"), 4, stem="cifar")
    assert model.encoder.conv1.stride == (1, 1)  # no downsampling stem: the full profile's encoder


@pytest.mark.parametrize("method", ["simclr", "byol"])
def test_compute_bound_uses_the_methods_own_loss(method):
    model, _, _ = bench.build(method, torch.device("cpu"), 8)
    images = torch.randint(0, 256, (8, 3, 28, 28), dtype=torch.uint8)
    expected = model.loss(images, None, torch.Generator().manual_seed(0))
    views = model.views(images, torch.Generator().manual_seed(0))
    assert views.shape == (16, 3, 28, 28)
    assert torch.allclose(model.view_loss(views), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("recipe", ["matched", "default"])
@pytest.mark.parametrize("method", ["simclr", "byol"])
def test_standard_recipe_gives_two_views(method, recipe):
    transform = bench.lightly_transform(method, 28, recipe)
    image = Image.fromarray(torch.randint(0, 256, (28, 28, 3), dtype=torch.uint8).numpy())
    views = transform(image)
    assert len(views) == 2 and all(v.shape == (3, 28, 28) for v in views)
    if recipe == "matched":  # medlib's normalisation: mean and std 0.5
        assert all(-1 <= v.min() <= v.max() <= 1 for v in views)


def test_sizes_without_a_file_are_upsampled_and_say_so(real_data):
    images, note = bench.bench_images(128, max_images=4)
    assert images.shape == (4, 3, 128, 128) and images.dtype == torch.uint8
    assert "upsampled to 128 px" in note


@pytest.mark.parametrize("kwargs", [dict(sizes=[32]), dict(methods=["moco"]), dict(steps=0), dict(workers=[-1]),
                                    dict(recipe="fancy"), dict(stem="vit")])
def test_bad_benchmark_options_are_refused(kwargs):
    with pytest.raises(ParameterError):
        bench.run_benchmark(**kwargs)


def test_the_command_line_refuses_a_bad_size_in_one_line(capsys):
    assert main(["--sizes", "32"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: sizes=[32] contains 32; allowed: 28, 64, 128, 224"]


def test_recorded_rows_are_read_tabled_checked_against_the_goals_and_plotted():
    rows = results.read_rows(["benchmarks/results/2026-11-26/cpu_bf16_bench.jsonl",
                              "benchmarks/results/2026-11-27/cpu_avx2_28px_bench.jsonl",
                              "benchmarks/results/2026-11-27/cpu_avx2_64px_bench.jsonl",
                              "benchmarks/results/2026-11-27/gpu_h100_fdd3ce1/bench.jsonl",
                              "benchmarks/results/2026-11-27/gpu_h100_full_profile/bench.jsonl"])
    assert len(rows) == 16 and "samples" not in rows and rows["a_eager"].notna().sum() == 8  # eager: GPU rows only
    assert rows["stem"].tolist() == ["imagenet"] * 14 + ["cifar"] * 2  # rows from before --stem: the ImageNet stem
    table = results.rows_table(rows)
    assert list(table.columns) == ["a medlib", "a eager", "b standard", "c compute", "a/b", "a/c", "graph gain",
                                   "bf16 gain"]
    assert table.index.names == results.INDEX and table.index.is_unique
    goals = results.goals(rows).reset_index()
    on_cuda = goals["device"].str.contains("(CUDA)", regex=False)
    cuda, cpu = goals[on_cuda], goals[~on_cuda]
    assert (cuda["a/b goal"] == 5.0).all() and (cpu["a/c goal"] == 0.90).all() and len(cuda) == 8
    assert ((goals["a/c"] >= goals["a/c goal"]) == (goals["a/c met"] == "yes")).all()
    assert (goals["a/c met"] == "yes").all() and cuda["a/c"].min() >= 0.90  # GPU: 0.900-0.99 against 0.85
    # a/b: met on the AVX-512 CPU in bf16 at 28 px, nowhere on the AVX2 VM, on the GPU but for the cifar stem
    assert (goals["a/b met"] == "yes").tolist() == [True] * 2 + [False] * 6 + [True] * 6 + [False] * 2
    fig = results.plot_rows(rows)
    assert len(fig.axes) == 3 and [len(ax.patches) for ax in fig.axes] == [4 * 3, 4 * 3, 8 * 4]
    labels = [t.get_text() for t in fig.axes[2].get_yticklabels()]
    assert labels[-1] == "BYOL, 64 px,\nbatch 512, cifar stem" and "stem" not in labels[0]


def test_the_rows_reader_prints_both_tables_and_refuses_a_missing_file(capsys):
    results.main(["benchmarks/results/2026-11-27/gpu_h100_fdd3ce1/bench.jsonl"])
    out = capsys.readouterr().out
    assert "a medlib" in out and "a/b goal" in out
    with pytest.raises(SystemExit) as exit_:
        results.main(["benchmarks/results/nowhere.jsonl"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().endswith("no such file: benchmarks/results/nowhere.jsonl")
