"""benchmarks/gpu_study.sh's flow on the CPU in seconds: a chapter without runs, no curve, no speed-up; the full
smoke run of the script is in benchmarks/README.md ("The GPU study in one script")."""

import json
import os
import subprocess
from pathlib import Path

from medlib.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def _study(out: Path, store: Path, **env) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | dict(
        OUT=str(out), MEDLIB_RUNS=str(store), MEDLIB_STUDY_PROFILE="smoke", CURVE_EPOCHS="0", LR_SCALES="", OPTION_SWEEPS="",
        SPEEDUP_JOBS="",
        CHAPTERS="01_data", STUDY_SECONDS="120") | env
    return subprocess.run(["bash", "benchmarks/gpu_study.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_study_script_times_each_chapter_exports_an_archive_and_a_second_run_continues_it(real_data, tmp_path):
    first = _study(tmp_path / "out1", tmp_path / "runs1")
    assert first.returncode == 0, first.stderr
    timings = (tmp_path / "out1" / "timings.tsv").read_text().splitlines()
    assert timings[0].split("\t") == ["what", "jobs", "seconds", "exit", "summary"]
    assert timings[1].startswith("01_data\t8\t") and timings[1].split("\t")[3] == "0"
    manifest = json.loads((tmp_path / "out1" / "archive" / "manifest.json").read_text())
    assert manifest["profile"] == "smoke" and manifest["missing"]  # every chapter's runs, none computed yet
    files = [p.relative_to(tmp_path / "out1") for p in (tmp_path / "out1").rglob("*") if p.is_file()]
    assert all(len(p.parts) <= 3 for p in files) and len(list((tmp_path / "out1" / "archive").iterdir())) <= 8

    second = _study(tmp_path / "out2", tmp_path / "runs2", ARCHIVE_IN=str(tmp_path / "out1" / "archive"))
    assert second.returncode == 0, second.stderr
    assert "0 runs imported" in (tmp_path / "out2" / "import.log").read_text()


def test_the_option_sweeps_run_at_the_rates_the_rate_sweep_chose(real_data, tmp_path):
    done = _study(tmp_path / "out", tmp_path / "runs", LR_SCALES="0.5", LR_ARMS="ssl-simclr", CHAPTERS="",
                  OPTION_SWEEPS="temperature:0.2;momentum:0.98", OPTION_ARMS="ssl-simclr ssl-byol")
    assert done.returncode == 0, done.stderr
    rows = {name: [json.loads(line) for line in (tmp_path / "out" / f"pretrain_{name}" / f"pretrain_{file}.jsonl")
                   .read_text().splitlines()] for name, file in (("lr", "lr"), ("temperature", "options"),
                                                                  ("momentum", "options"))}
    chosen = rows["lr"][0]["lr"]  # the only rate tried, so the one chosen
    configs = {(r["config"]["arm"], r["config"]["lr"], tuple(map(tuple, r["config"].get("options", ()))))
               for r in RunStore(tmp_path / "runs").runs("pretrain")}
    assert ("ssl-simclr", chosen, (("temperature", 0.2),)) in configs
    assert [(r["arm"], r["value"]) for r in rows["momentum"]] == [("ssl-byol", 0.98)]
