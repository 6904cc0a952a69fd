import pytest
import torch

from medlib import data
from medlib.validation import ParameterError


def test_load_real_breastmnist_as_uint8_tensors(real_data):
    train = data.load("breastmnist", "train")
    assert train.images.dtype == torch.uint8 and train.images.shape == (546, 1, 28, 28)
    assert train.class_counts() == [147, 399]
    assert data.load("breastmnist", "test", size=64).images.shape == (156, 1, 64, 64)
    retina = data.load("retinamnist", "val")
    assert retina.images.shape == (120, 3, 28, 28) and retina.class_counts() == [54, 12, 28, 20, 6]


def test_missing_file_offline_names_file_url_md5_and_root(real_data):
    with pytest.raises(data.DataError) as e:
        data.load("dermamnist", "train")
    text = str(e.value)
    url, md5 = data.file_info("dermamnist", 28)
    assert "dermamnist.npz" in text and url in text and md5 in text and str(real_data) in text


def test_wrong_md5_is_refused(real_data, tmp_path, monkeypatch):
    (tmp_path / "breastmnist.npz").write_bytes((real_data / "breastmnist.npz").read_bytes()[:-10] + b"0" * 10)
    with pytest.raises(data.DataError, match="MD5 differs"):
        data.ensure_file("breastmnist", 28, tmp_path)


@pytest.mark.parametrize("kwargs", [dict(flag="mnist"), dict(flag="breastmnist", size=32)])
def test_bad_flag_or_size_is_refused_before_io(kwargs):
    with pytest.raises(ParameterError):
        data.ensure_file(**kwargs)


def test_source_pool_union_labels_and_leakage_guard(real_data):
    pool = data.source_pool(["pneumoniamnist", "breastmnist"], targets=["breastmnist"])
    assert pool.classes == ("pneumoniamnist: normal", "pneumoniamnist: pneumonia",
                            "breastmnist: malignant", "breastmnist: normal, benign")
    # one breastmnist train image is byte-identical to a breastmnist test image: it must be dropped
    assert pool.dropped == {"pneumoniamnist": 0, "breastmnist": 1}
    assert len(pool) == 4708 + 546 - 1 and pool.images.shape[1:] == (3, 28, 28)
    assert set(pool.labels[pool.groups == 1].tolist()) == {2, 3}
    forbidden = data.eval_hashes(["breastmnist"])
    data.check_no_leakage(pool, forbidden)
    leaky = pool.subset(torch.arange(3))
    leaky = type(leaky)(**{**leaky.__dict__, "images": data.rgb(data.load("breastmnist", "test").images[:3])})
    with pytest.raises(AssertionError):
        data.check_no_leakage(leaky, forbidden)


def test_grey_and_colour_mix_under_the_channel_policy(real_data):
    pool = data.source_pool(["breastmnist", "retinamnist"])
    grey = pool.images[pool.groups == 0]
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    assert len(pool) == 546 + 1080


def test_max_images_is_a_seeded_subset(real_data):
    a = data.source_pool(["retinamnist"], max_images=100, seed=1)
    b = data.source_pool(["retinamnist"], max_images=100, seed=1)
    c = data.source_pool(["retinamnist"], max_images=100, seed=2)
    assert len(a) == 100 and torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
