"""``python -m medlib compute``: stored runs as submitit jobs (local processes and in-process debug jobs)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from medlib import jobs, plan
from medlib.cli import main
from medlib.profiles import parameters
from medlib.store import RunStore, load_torch
from medlib.study import adapt_configs, pretrain_config

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _args(**given):
    return types.SimpleNamespace(**({"only": ["03_head_to_head"], "executor": "local", "jobs": 2, "retries": 2,
                                     "time": None, "partition": None, "gpus": None, "dry_run": False} | given))


def test_chapter_grid_fills_a_fresh_store_with_two_local_jobs_and_a_rerun_submits_nothing(real_data, capsys):
    P = parameters(profile="smoke", arms=["scratch", "ssl-simclr"], protocols=["linear"],
                   pretrain_max_images=64, max_train_images=32)
    assert jobs.compute_command(P, _args()) == 0
    first = capsys.readouterr().out
    assert "pre-trainings: 0 stored, 1 to compute" in first and "adaptations: 0 stored, 2 to compute" in first
    assert "2 done / 0 running / 0 queued / 0 failed" in first and "1 running / 0 queued" in first
    store = RunStore()
    assert {c.arm for c in plan.head_to_head(P) if store.get("adapt", c.to_dict())} == \
        {"scratch", "ssl-simclr"}
    logs = sorted((store.root / "jobs").iterdir())

    assert jobs.compute_command(P, _args()) == 0
    second = capsys.readouterr().out
    assert "pre-trainings: 1 stored, 0 to compute" in second and "adaptations: 2 stored, 0 to compute" in second
    assert sorted((store.root / "jobs").iterdir()) == logs  # nothing was submitted


def _kill_after_first_checkpoint(run_dir: Path, jobs_dir: Path, seen: dict):
    """Kill the local job's process (the child of submitit's controller) once its first checkpoint is written."""
    deadline = time.time() + 300
    while time.time() < deadline and not (run_dir / "checkpoint.pt").exists():
        time.sleep(0.05)
    time.sleep(0.2)  # the checkpoint is renamed into place whole; let the rename settle before reading
    seen["history"] = load_torch(run_dir / "checkpoint.pt")["history"]
    for controller in [p.name for p in jobs_dir.iterdir() if p.name.isdigit()]:
        children = Path(f"/proc/{controller}/task/{controller}/children")
        for pid in (children.read_text().split() if children.exists() else []):
            os.kill(int(pid), signal.SIGKILL)
            seen["killed"] = int(pid)


def test_killed_local_job_is_retried_and_resumes_from_its_checkpoint(real_data, capsys):
    P = parameters(profile="smoke", pretrain_epochs=4, pretrain_max_images=64, pretrain_batch_size=32)
    cfg = pretrain_config(P, "ssl-simclr", "breastmnist")
    store = RunStore()
    seen = {}
    killer = threading.Thread(target=_kill_after_first_checkpoint,
                              args=(store.path("pretrain", cfg.to_dict()), store.root / "jobs", seen))
    killer.start()
    ex = jobs.executor("local", store.root / "jobs" / "%j", 1)
    summary = jobs.compute([cfg], [], ex, 1, store, retries=1, threads=1, poll=0.2)
    killer.join()
    out = capsys.readouterr().out
    assert "killed" in seen and "retrying pretrain ssl-simclr" in out, out
    assert summary["done"] == 1 and summary["failed"] == 0
    history = store.get("pretrain", cfg.to_dict())["history"]
    assert len(history) == 4
    assert history[:len(seen["history"])] == seen["history"]  # the epochs before the kill were not run again


def _fake(calls: list, name, error: str | None = None, fails=lambda cfg: False):
    """A stand-in for a run's computation: records ``name(cfg)`` in ``calls``, raises ``error`` where ``fails``."""
    def run(cfg, store, progress):
        calls.append(name(cfg))
        if fails(cfg):
            raise RuntimeError(error)
    return run


def test_failing_job_never_stops_the_others_and_its_adaptations_are_not_submitted(monkeypatch, capsys):
    P = parameters(profile="smoke", arms=["scratch", "ssl-byol"], protocols=["linear"])
    adaptations = adapt_configs(P, "breastmnist")
    pretrains = [a.pretrain for a in adaptations if a.pretrain] + [pretrain_config(P, "tl", "breastmnist")]
    calls = []
    monkeypatch.setattr(jobs, "pretrained", _fake(calls, lambda c: c.arm, "loss became nan",
                                                  lambda c: c.arm == "ssl-byol"))
    monkeypatch.setattr(jobs, "run_adaptation", lambda cfg, store, progress: calls.append(cfg.arm))
    store = RunStore()
    ex = jobs.executor("debug", store.root / "jobs" / "%j", 1)
    summary = jobs.compute(pretrains, adaptations, ex, 1, store, retries=1)
    out = capsys.readouterr().out
    assert calls == ["ssl-byol", "tl", "ssl-byol", "scratch"]  # tried twice; the others ran
    assert summary["done"] == 2 and summary["failed"] == 2 and len(summary["failed_logs"]) == 1
    assert "failed: pretrain ssl-byol" in out and "RuntimeError: loss became nan" in out
    assert "not submitted: ssl-byol linear -> breastmnist" in out and "failed log: " in out


@pytest.mark.parametrize("argv, message", [
    (["--only", "03_head"], "unknown chapter '03_head'"),
    (["--jobs", "0"], "jobs=0 is not allowed"),
    (["--executor", "cloud"], "executor='cloud' is not allowed"),
    (["--executor", "slurm"], "needs Slurm's sbatch on PATH"),
    (["--retries", "-1"], "retries=-1 is not allowed"),
])
def test_bad_options_are_refused_in_one_line_before_anything_is_submitted(argv, message, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["compute", "--profile", "smoke", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (RunStore().root / "jobs").exists()


def test_bad_slurm_environment_is_refused(capsys, monkeypatch):
    monkeypatch.setenv("MEDLIB_SLURM_TIME", "2h")
    assert main(["compute", "--profile", "smoke", "--executor", "slurm"]) == 2
    assert "MEDLIB_SLURM_TIME='2h' is not allowed" in capsys.readouterr().err


def test_dry_run_counts_each_chapters_runs_and_submits_nothing(capsys):
    assert main(["compute", "--profile", "smoke", "--only", "03_head_to_head", "06_domain", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["03_head_to_head: 6 pre-trainings, 16 adaptations", "06_domain: 12 pre-trainings, 28 adaptations",
                   "distinct runs: 18 pre-trainings, 40 adaptations"]
    assert not RunStore().root.exists()


def test_compute_takes_a_chapters_knobs_and_refuses_a_bad_one_in_one_line(capsys):
    """``compute -p NAME VALUE`` computes the runs the chapters need under those knobs, as ``chapter -p`` would
    execute them (e.g. chapter 3 at other pre-training rates); a bad knob stops it before anything is planned."""
    assert main(["compute", "--profile", "smoke", "--only", "03_head_to_head", "--dry-run", "-p", "arms", "['tl']",
                 "-p", "protocols", "['linear']"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "03_head_to_head: 1 pre-trainings, 1 adaptations"
    assert main(["compute", "--profile", "smoke", "--dry-run", "-p", "pretrain_lrs", "{'scratch': 0.1}"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: pretrain_lrs='scratch' is not allowed; choose one of: tl, ssl-simclr, ssl-byol, ssl-vicreg, "
        "bridge-simclr"]
    assert not RunStore().root.exists()


def test_every_chapter_has_a_plan_and_the_grid_cells_build_their_runs_with_it():
    names = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert list(plan.CHAPTERS) == names
    for name, call in [("02_pretraining", "plan.pretrainings(P)"), ("03_head_to_head", "plan.head_to_head(P)"),
                       ("04_scarcity", "plan.scarcity(P)"), ("04_scarcity", "plan.per_class(P)"),
                       ("05_imbalance", "plan.imbalance(P)"), ("06_domain", "plan.domain(P)"),
                       ("11_label_noise", "plan.label_noise(P)"),
                       ("07_robustness", "plan.robustness(P)"),
                       ("08_explainability", "plan.explainability(P)"), ("09_speed", "plan.head_to_head(P)")]:
        cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
        assert any(call in "".join(c["source"]) for c in cells if c["cell_type"] == "code"), (name, call)


def test_the_compute_path_imports_no_notebook_stack():
    code = ("import sys, medlib.cli, medlib.jobs, medlib.plan, medlib.experiment; "
            "print([m for m in ('papermill', 'nbformat', 'IPython', 'jupyter_client') if m in sys.modules])")
    run = subprocess.run([sys.executable, "-c", code], cwd=NOTEBOOKS.parent, capture_output=True, text=True)
    assert run.stdout.strip() == "[]", run.stderr


def test_robustness_and_explainability_are_computed_as_a_third_wave_and_read_without_weights(real_data, capsys):
    from medlib import corruptions, explain
    from medlib.experiment import run_grid
    P = parameters(profile="smoke", arms=["scratch", "ssl-simclr"], protocols=["linear"],
                   pretrain_max_images=64, max_train_images=32, severities=[1], n_images=2)
    only = ["07_robustness", "08_explainability"]
    assert jobs.compute_command(P, _args(only=only, executor="debug", jobs=1)) == 0
    out = capsys.readouterr().out
    assert "adaptations: 0 stored, 2 to compute" in out and "evaluations: 0 stored, 4 to compute" in out, out
    store = RunStore()
    assert len(store.runs("robustness")) == 2 and len(store.runs("explain")) == 2
    for weights in store.root.rglob("*.pt"):
        weights.unlink()

    robustness, explanations = plan.robustness(P), plan.explainability(P)
    assert len(run_grid([e.adapt for e in robustness], progress=False)) == 2
    scores = corruptions.robustness_grid(robustness)
    assert len(scores) == 2 * (1 + len(corruptions.FAMILIES))
    panel = explain.gradcam_panel(explanations)
    assert [m.shape for m in panel["maps"].values()] == [(2, P.size, P.size)] * 2 and len(panel["images"]) == 2
    embeddings, silhouettes, classes = explain.embedding_panel(explanations)
    assert set(silhouettes) == {("scratch", "linear"), ("ssl-simclr", "linear")} and classes
    assert jobs.compute_command(P, _args(only=only, executor="debug", jobs=1)) == 0
    assert "evaluations: 4 stored, 0 to compute" in capsys.readouterr().out


def test_an_evaluation_whose_adaptation_failed_is_not_submitted(monkeypatch, capsys):
    from dataclasses import replace

    from medlib.corruptions import RobustnessConfig
    P = parameters(profile="smoke", arms=["scratch"], protocols=["linear", "finetune"])
    adaptations = [replace(c, keep_model=True) for c in adapt_configs(P, "breastmnist")]
    evaluations = [RobustnessConfig(c) for c in adaptations]
    calls = []
    monkeypatch.setattr(jobs, "run_adaptation", _fake(calls, lambda c: c.protocol, "out of memory",
                                                      lambda c: c.protocol == "finetune"))
    monkeypatch.setattr(jobs, "robustness", _fake(calls, lambda c: f"robustness {c.adapt.protocol}"))
    store = RunStore()
    summary = jobs.compute([], adaptations, jobs.executor("debug", store.root / "jobs" / "%j", 1), 1, store,
                           retries=0, evaluations=evaluations)
    out = capsys.readouterr().out
    assert calls == ["linear", "finetune", "robustness linear"]
    assert summary["done"] == 2 and summary["failed"] == 2
    assert "not submitted: robustness of scratch finetune -> breastmnist seed 0 (its adaptation failed)" in out


def test_the_readmes_full_profile_job_table_is_the_dry_run():
    """README's table of the full profile's jobs per chapter is what ``compute --dry-run`` counts."""
    import re

    readme = (NOTEBOOKS.parent / "README.md").read_text()
    block = readme[readme.index("| chapter | pre-trainings | adaptations | evaluations |"):]
    rows = re.findall(r"^\| \**([\w ,]+?)\** \| \**(\d+)\** \| \**(\d+)\** \| \**(\d+)\** \|$", block, re.M)
    P = parameters(profile="full")
    expected = [(name, *map(str, map(len, plan.chapter_runs(P, [name])))) for name in plan.CHAPTERS
                if name != "01_data"] + [("distinct runs, all chapters", *map(str, map(len, plan.chapter_runs(P))))]
    assert rows[:len(expected)] == expected


def test_the_gpu_profiles_job_counts_in_prose_are_the_dry_run():
    """README and benchmarks/README state the gpu profile's distinct runs; they are what ``--dry-run`` counts."""
    import re

    counts = tuple(map(len, plan.chapter_runs(parameters(profile="gpu"))))
    for path in (NOTEBOOKS.parent / "README.md", NOTEBOOKS.parent / "benchmarks" / "README.md"):
        text = " ".join(path.read_text().split())
        stated = re.findall(r"(\d+) pre-trainings(?: \([^)]*\))?, (\d+) adaptations and (\d+) evaluations", text)
        assert stated and all(tuple(map(int, s)) == counts for s in stated), (path.name, stated, counts)
