import dataclasses

import pytest
import torch

from medlib.experiment import AdaptConfig
from medlib.pretrain import PretrainConfig
from medlib.store import CorruptFile, RunStore, load_torch, run_key, save_torch

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
