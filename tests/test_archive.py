"""``python -m medlib archive``: what the chapters read, exported without weights, imported with checksums, and
chapters executed from it with no training."""

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from medmnist import Evaluator

from medlib import archive, jobs, plan
from medlib.archive import ArchiveError, export_archive, import_archive
from medlib.cli import main
from medlib.experiment import pretrained, run_adaptation
from medlib.profiles import parameters
from medlib.store import RunStore
from medlib.validation import ParameterError

ROOT = Path(__file__).resolve().parents[1]
KNOBS = dict(arms=["scratch", "ssl-simclr"], protocols=["linear"], pretrain_max_images=64,
             max_train_images=32)
CHAPTER = ["03_head_to_head"]


def _compute(P, store):
    pretrains, adaptations, evaluations = plan.chapter_runs(P, CHAPTER)
    ex = jobs.executor("debug", store.root / "jobs" / "%j", 1)
    return jobs.compute(pretrains, adaptations, ex, 1, store, retries=0, say=lambda line: None,
                        evaluations=evaluations)


def _files(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny smoke grid of chapter 03 computed once and exported: (profile, store, archive folder)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDLIB_DATA", str(ROOT.parent / "shared" / "data" / "medmnist"))
        mp.setenv("MEDLIB_OFFLINE", "1")
        if not (ROOT.parent / "shared" / "data" / "medmnist" / "breastmnist.npz").exists():
            pytest.skip("real MedMNIST files not found")
        P, store = parameters(profile="smoke", **KNOBS), RunStore(tmp_path_factory.mktemp("store"))
        assert _compute(P, store)["failed"] == 0
        folder = tmp_path_factory.mktemp("archive")
        export_archive(P, CHAPTER, folder, store)
        yield P, store, folder


def test_a_partial_archive_imports_and_compute_adds_only_what_is_missing_then_chapter_03_runs_read_only(
        real_data, tmp_path, monkeypatch, capsys):
    P = parameters(profile="smoke", **KNOBS)
    first = RunStore(tmp_path / "gpu_run_1")
    scratch, simclr = plan.head_to_head(P)
    run_adaptation(scratch, first, progress=False)  # the first GPU run stopped after one adaptation
    pretrained(simclr.pretrain, first, progress=False)  # and a pre-training whose adaptation is still missing
    manifest = export_archive(P, CHAPTER, tmp_path / "partial", first)
    assert [r["kind"] for r in manifest["runs"]] == ["pretrain", "adapt"]
    assert [m["run"] for m in manifest["missing"]] == ["ssl-simclr linear -> breastmnist seed 0"]

    second = RunStore(tmp_path / "gpu_run_2")
    counts = import_archive(tmp_path / "partial", second)
    assert counts == {"imported": 1, "kept": 0, "left_out": 1, "missing": 1}  # its weights are not in the archive
    summary = _compute(P, second)
    assert (summary["stored"], summary["done"], summary["failed"]) == (1, 2, 0)
    manifest = export_archive(P, CHAPTER, tmp_path / "partial", second)  # the same folder, now complete
    assert manifest["missing"] == [] and len(manifest["runs"]) == 3
    assert sorted(p.name for p in (tmp_path / "partial").iterdir()) == sorted(
        [archive.MANIFEST] + [p["name"] for p in manifest["parts"]])  # the first export's part is gone
    members = [m for part in manifest["parts"] for m in tarfile.open(tmp_path / "partial" / part["name"]).getnames()]
    assert {Path(m).suffix for m in members} == {".json", ".csv"}  # never a weight file

    laptop = tmp_path / "laptop"
    monkeypatch.setenv("MEDLIB_RUNS", str(laptop))
    assert main(["archive", "import", str(tmp_path / "partial")]) == 0
    assert "3 runs imported" in capsys.readouterr().out
    assert not list(laptop.rglob("*.pt"))
    before = _files(laptop)
    from medlib.runner import ChapterFailed, run_chapter

    monkeypatch.setenv("MEDLIB_READ_ONLY", "1")
    run_chapter("03_head_to_head", "smoke", KNOBS, output_dir=tmp_path / "book")
    assert _files(laptop) == before  # nothing trained, nothing stored

    gone = laptop / "adapt" / manifest["runs"][-1]["key"]
    shutil.rmtree(gone)
    with pytest.raises(ChapterFailed) as e:
        run_chapter("03_head_to_head", "smoke", KNOBS, output_dir=tmp_path / "book")
    assert "StoreError" in str(e.value) and gone.name in str(e.value) and "\n" not in str(e.value)
    assert not gone.exists()


def test_export_needs_a_folder_and_known_chapters(capsys):
    assert main(["archive", "export", "--profile", "smoke", "--only", "03_head_to_head"]) == 2
    assert "needs the archive's folder" in capsys.readouterr().err
    assert main(["archive", "export", "--profile", "smoke", "--only", "03_head", "out"]) == 2
    assert "03_head" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["part", "manifest file", "stray member", "missing part"])
def test_a_damaged_archive_imports_nothing(exported, tmp_path, damage, capsys):
    _, _, folder = exported
    copy = Path(shutil.copytree(folder, tmp_path / "copy"))
    manifest = json.loads((copy / archive.MANIFEST).read_text())
    part = copy / manifest["parts"][0]["name"]
    if damage == "part":
        data = bytearray(part.read_bytes())
        data[len(data) // 2] ^= 1
        part.write_bytes(bytes(data))
    elif damage == "manifest file":
        manifest["runs"][0]["files"]["result.json"] = "0" * 64
    elif damage == "stray member":
        manifest["runs"][0]["files"] = {"config.json": manifest["runs"][0]["files"]["config.json"]}
    else:
        part.unlink()
    (copy / archive.MANIFEST).write_text(json.dumps(manifest))
    store = RunStore(tmp_path / "store")
    with pytest.raises(ArchiveError) as e:
        import_archive(copy, store)
    assert "\n" not in str(e.value) and not store.root.exists()
    assert main(["archive", "import", str(copy)]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_parts_stay_under_the_size_limit_and_too_many_are_refused(exported, tmp_path, monkeypatch):
    P, store, _ = exported
    limit = max(archive._tar_bytes(archive.run_files(d)) for d in store.root.glob("*/*") if d.name != "jobs") + 1024
    monkeypatch.setattr(archive, "PART_BYTES", limit)  # a part holds about one run
    monkeypatch.setattr(archive, "_HEADROOM", 0)
    manifest = export_archive(P, CHAPTER, tmp_path / "small", store)
    assert len(manifest["parts"]) > 1 and all(p["bytes"] <= limit for p in manifest["parts"])
    assert import_archive(tmp_path / "small", RunStore(tmp_path / "store"))["imported"] == 3
    monkeypatch.setattr(archive, "MAX_FILES", len(manifest["parts"]))
    with pytest.raises(ParameterError, match="more than"):
        export_archive(P, CHAPTER, tmp_path / "refused", store)
    assert not (tmp_path / "refused").exists()


def _rescore(csv: Path, data_root: Path) -> None:
    """Re-score a prediction CSV with medmnist's Evaluator and check the AUC and ACC its name states."""
    stem, _, rest = csv.name.partition("_test_")
    flag, _, size = stem.partition("_")
    evaluator = Evaluator(flag, "test", size=int(size) if size else None, root=str(data_root))
    scores = pd.read_csv(csv, header=None, index_col=0).sort_index().to_numpy(dtype=np.float64)
    auc, acc = evaluator.evaluate(scores)
    assert rest.startswith(f"[AUC]{auc:.3f}_[ACC]{acc:.3f}@"), (csv.name, auc, acc)


def _archived_csvs(folder: Path, tmp_path: Path) -> list[Path]:
    store = RunStore(tmp_path / folder.name)
    import_archive(folder, store, say=lambda line: None)
    adaptations = [r for r in json.loads((folder / archive.MANIFEST).read_text())["runs"] if r["kind"] == "adapt"]
    csvs = sorted(store.root.glob("adapt/*/*.csv"))
    assert len(csvs) == len(adaptations)  # one test prediction CSV per adaptation run
    return csvs


COMMITTED = sorted(p.parent for p in (ROOT / "archives").glob("*/manifest.json"))


def test_every_prediction_csv_of_an_archive_re_scores_to_the_figures_in_its_name(exported, real_data, tmp_path):
    csvs = _archived_csvs(exported[2], tmp_path)
    assert csvs
    for csv in csvs:
        _rescore(csv, real_data)


@pytest.mark.parametrize("folder", COMMITTED, ids=[p.name for p in COMMITTED])
def test_every_prediction_csv_of_a_committed_archive_re_scores(folder, real_data, tmp_path):
    for csv in _archived_csvs(folder, tmp_path):
        _rescore(csv, real_data)


def test_a_missing_evaluation_leaves_out_the_adaptation_and_pre_training_whose_weights_it_needs(real_data, tmp_path):
    """The archive holds no weights: an evaluation still to compute (chapter 07's corruption scores) needs its
    adaptation's model and that adaptation's pre-training's encoder, so import must leave both out."""
    P = parameters(profile="smoke", **KNOBS)
    store = RunStore(tmp_path / "store")
    manifest = export_archive(P, ["07_robustness"], tmp_path / "archive", store)
    evaluation = next(m for m in manifest["missing"] if m["kind"] == "robustness")
    adaptation = next(m for m in manifest["missing"] if m["key"] == evaluation["needs"][0])
    assert adaptation["kind"] == "adapt" and evaluation["needs"] == [adaptation["key"], *adaptation["needs"]]
