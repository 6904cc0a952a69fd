import dataclasses

import pytest
import torch

from medlib.experiment import AdaptConfig
from medlib.pretrain import PretrainConfig
from medlib.store import CorruptFile, RunStore, StoreError, load_torch, run_key, save_torch

BASE = PretrainConfig("ssl-simclr", ("pneumoniamnist",), ("breastmnist",), max_images=64)
CHANGES = dict(arm="ssl-byol", sources=("retinamnist",), targets=("retinamnist",), size=64, backbone="resnet50",
               stem="cifar", epochs=3, batch_size=32, lr=0.1, weight_decay=0.0, max_images=65, seed=1)


@pytest.mark.parametrize("field", list(CHANGES))
def test_pretrain_key_changes_with_every_field(field):
    assert run_key("pretrain", dataclasses.replace(BASE, **{field: CHANGES[field]}).to_dict()) != \
        run_key("pretrain", BASE.to_dict())


@pytest.mark.parametrize("change", [dict(seed=1), dict(protocol="linear"), dict(label_fraction=0.5),
                                    dict(imbalance_ratio=2.0), dict(epochs=2), dict(target="retinamnist"),
                                    dict(pretrain=dataclasses.replace(BASE, epochs=2)), dict(keep_model=True)])
def test_adapt_key_changes_with_the_scenario(change):
    cfg = AdaptConfig("ssl-simclr", "breastmnist", "finetune", pretrain=BASE)
    assert run_key("adapt", dataclasses.replace(cfg, **change).to_dict()) != run_key("adapt", cfg.to_dict())


def test_cached_computes_once_and_lists(tmp_path):
    store, calls = RunStore(tmp_path), []

    def compute(run_dir):
        calls.append(run_dir)
        return {"value": 1}

    assert store.cached("adapt", {"a": 1}, compute) == {"value": 1}
    assert store.cached("adapt", {"a": 1}, compute) == {"value": 1}
    assert len(calls) == 1 and [r["config"] for r in store.runs()] == [{"a": 1}]


def test_failed_compute_leaves_no_result(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(ZeroDivisionError):
        store.cached("adapt", {"a": 2}, lambda run_dir: 1 / 0)
    assert store.get("adapt", {"a": 2}) is None and store.runs() == []


def test_checksummed_torch_files_detect_damage(tmp_path):
    path = tmp_path / "w.pt"
    save_torch({"w": torch.arange(10)}, path)
    assert torch.equal(load_torch(path)["w"], torch.arange(10))
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFile):
        load_torch(path)


def test_an_edited_result_does_not_count_and_is_computed_again(tmp_path, capsys):
    store, calls = RunStore(tmp_path), []
    store.cached("adapt", {"a": 1}, lambda run_dir: calls.append(1) or {"test": {"auc": 0.61}})
    path = store.path("adapt", {"a": 1}) / "result.json"
    path.write_bytes(path.read_bytes().replace(b"0.61", b"0.99"))  # an AUC edited by hand
    assert store.cached("adapt", {"a": 1}, lambda run_dir: calls.append(1) or {"test": {"auc": 0.61}}) == \
        {"test": {"auc": 0.61}}
    assert len(calls) == 2
    assert f"{path.parent}: result.json fails its checksum; this run is computed again" in \
        capsys.readouterr().out


def test_listing_leaves_out_a_damaged_run_and_names_it(tmp_path):
    store = RunStore(tmp_path)
    for a in (1, 2, 3):
        store.cached("adapt", {"a": a}, lambda run_dir: {"x": 1})
    (store.path("adapt", {"a": 2}) / "result.json").write_text('{"half": ')
    (store.path("adapt", {"a": 3}) / "config.json").write_text("[]")
    rows, damaged = store.scan()
    assert sorted(r["config"]["a"] for r in rows) == [1]
    assert damaged == sorted([f"{store.path('adapt', {'a': 2})}: result.json fails its checksum (edited or damaged); "
                              "not counted, computed again when asked for",
                              f"{store.path('adapt', {'a': 3})}: config.json cannot be read (TypeError); not listed"])


def test_opening_a_run_removes_the_temporary_files_a_killed_write_left(tmp_path):
    store = RunStore(tmp_path)
    run_dir = store.path("pretrain", {"a": 1})
    run_dir.mkdir(parents=True)
    save_torch({"epoch": 1}, run_dir / "checkpoint.pt")
    (run_dir / ".checkpoint.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # killed during a write
    seen = []
    store.cached("pretrain", {"a": 1}, lambda d: seen.append(sorted(p.name for p in d.iterdir())) or {"x": 1})
    assert seen == [[".lock", "checkpoint.pt", "config.json"]]  # the checkpoint stays for the resume


def test_a_computation_that_fails_before_storing_anything_leaves_no_folder(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(ZeroDivisionError):
        store.cached("adapt", {"a": 1}, lambda run_dir: 1 / 0)
    assert not store.path("adapt", {"a": 1}).exists()

    def interrupted_after_a_checkpoint(run_dir):
        save_torch({"epoch": 1}, run_dir / "checkpoint.pt")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.cached("pretrain", {"a": 1}, interrupted_after_a_checkpoint)
    assert (store.path("pretrain", {"a": 1}) / "checkpoint.pt").exists()  # kept for the resume


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_a_run_store_that_cannot_hold_runs_is_one_clear_error(where, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    root = blocker if where == "a file" else blocker / "runs"
    with pytest.raises(StoreError, match=f"the run store (cannot write to|{root} is a file)") as e:
        RunStore(root).cached("adapt", {"a": 1}, lambda run_dir: {"x": 1})
    assert str(root) in str(e.value) and "MEDLIB_RUNS" in str(e.value) and "\n" not in str(e.value)


def test_a_read_only_store_serves_stored_runs_and_refuses_a_missing_one_in_one_line(tmp_path, monkeypatch):
    store, calls = RunStore(tmp_path), []
    store.cached("adapt", {"arm": "tl", "seed": 0}, lambda run_dir: {"value": 1})
    monkeypatch.setenv("MEDLIB_READ_ONLY", "1")
    monkeypatch.setenv("MEDLIB_PROFILE", "quick")
    assert store.cached("adapt", {"arm": "tl", "seed": 0}, calls.append) == {"value": 1}
    with pytest.raises(StoreError) as e:
        store.cached("adapt", {"arm": "tl", "seed": 1}, calls.append)
    key = run_key("adapt", {"arm": "tl", "seed": 1})
    assert calls == [] and "\n" not in str(e.value) and not (tmp_path / "adapt" / key).exists()
    words = [key, "tl 1", "MEDLIB_READ_ONLY=1", "python -m medlib compute --profile quick"]
    assert all(w in str(e.value) for w in words)
