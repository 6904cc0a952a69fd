import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from medlib import adapt
from medlib.data import ImageSet
from medlib.experiment import AdaptConfig
from medlib.models import Classifier, backbone
from medlib.profiles import parameters
from medlib.store import run_key
from medlib.validation import ParameterError
from medlib.study import adapt_configs


class Pixels(nn.Module):
    """An encoder whose features are the (normalised) pixels of a 1 x 1 x d image: synthetic features as images."""

    def __init__(self, d):
        super().__init__()
        self.feature_dim = d

    def forward(self, x):
        return x[:, 0].flatten(1)


def image_set(x: np.ndarray, y: np.ndarray, split: str) -> ImageSet:
    """Features in 0..255 as uint8 images of one row, binary labels."""
    images = torch.from_numpy(np.clip(x, 0, 255).astype(np.uint8)).reshape(len(x), 1, 1, -1)
    return ImageSet(images, torch.from_numpy(y).long(), "binary-class", ("a", "b"), ("x",),
                    torch.zeros(len(y), dtype=torch.long), split, 28)


def blobs(n, d, gap, seed, minority=0.5):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < minority).astype(int)
    return 128 + 12 * rng.normal(size=(n, d)) + gap * y[:, None], y


def probed(splits, seed=0):
    model = Classifier(Pixels(splits[0].images.shape[-1]), 2)
    return model, adapt.adapt(model, "linear", *splits, epochs=1, seed=seed, progress=False)


def test_the_probe_separates_a_separable_train_set_and_converges():
    train, val, test = (image_set(*blobs(200, 16, 40, s), split) for s, split in enumerate(("train", "val", "test")))
    model, out = probed((train, val, test))
    train_pred = adapt.probabilities(model, train.images, train.task).argmax(1)
    assert (train_pred == train.labels.numpy()).mean() >= 0.99
    assert out["converged"] and out["val_auc"] > 0.99 and out["train_loss"] < 0.05 and out["C"] >= 1


def test_the_chosen_C_is_weaker_with_noise_dimensions():
    rng = np.random.default_rng(0)

    def correlated(n):  # the label is in x0 - x1 only: a weak penalty (large C) is needed to cancel s
        y, s = rng.integers(0, 2, n), 10 * rng.normal(size=n)
        return np.c_[s + y, s, rng.normal(size=(n, 3))], y

    def noisy(n):  # one weak signal among 200 noise features: a strong penalty (small C) is best
        y = rng.integers(0, 2, n)
        x = rng.normal(size=(n, 200))
        x[:, 0] += 0.7 * y
        return x, y

    chosen = {}
    for make in (correlated, noisy):
        (x, y), (xv, yv) = make(60), make(400)
        mean, std = x.mean(0), x.std(0)
        chosen[make.__name__] = adapt.fit_probe((x - mean) / std, y, (xv - mean) / std, yv, "binary-class")[2]["C"]
    assert chosen["correlated"] >= 10 and chosen["noisy"] <= 1e-2


def test_balanced_class_weights_move_the_decision_towards_the_minority():
    x, y = blobs(400, 4, 8, 0, minority=0.1)  # overlapping classes, 1 minority image in 10
    z = (x - x.mean(0)) / x.std(0)
    weight, bias, _ = adapt.logistic_regression(z, y, "binary-class", 1.0)
    ours = (z @ weight.T + bias).argmax(1)
    plain = LogisticRegression(C=1.0).fit(z, y).predict(z)
    assert ours[y == 1].mean() > plain[y == 1].mean() + 0.2  # minority recall
    assert ours.mean() > 2 * plain.mean()


def test_the_folded_head_scores_images_as_the_probe_and_reruns_are_identical():
    splits = [image_set(*blobs(120, 8, 10, s), split) for s, split in enumerate(("train", "val", "test"))]
    model, out = probed(splits)
    assert np.array_equal(adapt.probabilities(model, splits[2].images, "binary-class"), out["test_scores"])
    f = [adapt.features(model.encoder, s.images, torch.device("cpu")).double() for s in splits]
    mean, std = adapt.standardisation(f[0])
    reference = LogisticRegression(C=out["C"], class_weight="balanced", max_iter=adapt.PROBE_MAX_ITER)
    reference.fit(((f[0] - mean) / std).numpy(), splits[0].labels.numpy())
    assert np.allclose(out["test_scores"], reference.predict_proba(((f[2] - mean) / std).numpy()), atol=1e-5)
    assert [g["C"] for g in out["C_grid"]] == list(adapt.PROBE_CS) and out["iterations"] > 0
    again = probed(splits)[1]
    assert np.array_equal(again["test_scores"], out["test_scores"]) and again["knn_auc"] == out["knn_auc"]


def test_knn_votes_with_the_nearest_features_in_cosine_similarity():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    scores = adapt.knn_scores(bank, labels, torch.tensor([[5.0, 0.2], [0.3, 2.0]]), "binary-class", 2, k=20)
    assert scores.argmax(1).tolist() == [0, 1] and np.allclose(scores.sum(1), 1)
    assert adapt.knn_scores(bank, labels, bank, "binary-class", 2, k=1).argmax(1).tolist() == [0, 0, 1, 1]
    multi = adapt.knn_scores(bank, torch.tensor([[1, 0], [1, 1], [0, 1], [0, 1]]), bank[:1], adapt.MULTI_LABEL, 2)
    assert multi.shape == (1, 2) and multi[0, 0] > 0.5 > multi[0, 1]


def test_every_linear_run_reports_knn_beside_the_probe():
    splits = [image_set(*blobs(60, 8, 40, s), split) for s, split in enumerate(("train", "val", "test"))]
    out = probed(splits)[1]
    assert out["knn_auc"] > 0.95 and {"C", "train_loss", "iterations", "converged"} <= set(out)


def test_the_lr_grid_keeps_the_rate_with_the_best_val_auc(monkeypatch):
    val_aucs = {1e-4: 0.6, 3e-4: 0.8, 1e-3: 0.7}

    def fake_finetune(model, train, val, epochs, lr, batch_size, seed, device, progress):
        assert torch.all(model.head.bias == start_bias)  # every rate starts from the same weights
        with torch.no_grad():
            model.head.bias.fill_(lr)
        return {"val_auc": val_aucs[lr], "best_epoch": 1, "history": []}

    monkeypatch.setattr(adapt, "_finetune", fake_finetune)
    splits = [image_set(*blobs(20, 4, 40, s), split) for s, split in enumerate(("train", "val", "test"))]
    model = Classifier(Pixels(4), 2)
    torch.manual_seed(3)
    model.head.reset_parameters()
    start_bias = model.head.bias.detach().clone()
    out = adapt.adapt(model, "finetune", *splits, epochs=1, seed=3, lrs=tuple(val_aucs), progress=False)
    assert out["lr"] == 3e-4 and out["val_auc"] == 0.8 and torch.all(model.head.bias == 3e-4)
    assert [(g["lr"], g["val_auc"]) for g in out["lr_grid"]] == list(val_aucs.items())


def test_the_profiles_lr_grid_reaches_the_finetune_configs_and_their_store_key():
    P = parameters(profile="quick")
    cfg = {c.protocol: c for c in adapt_configs(P, "breastmnist", arms=["scratch"], seeds=[0])}
    assert cfg["finetune"].lrs == (1e-4, 3e-4, 1e-3) and parameters(profile="smoke").finetune_lrs == [1e-3]
    other = adapt_configs(parameters(profile="quick", finetune_lrs=[1e-3]), "breastmnist", arms=["scratch"],
                          protocols=["finetune"], seeds=[0])[0]
    assert run_key("adapt", other.to_dict()) != run_key("adapt", cfg["finetune"].to_dict())


@pytest.mark.parametrize("n, sizes", [(129, [129]), (257, [128, 129]), (128, [128]), (130, [128, 2]),
                                      (1, [1])])
def test_batches_never_leave_a_lone_last_image(n, sizes):
    assert [s.stop - s.start for s in adapt.batches(n, 128)] == sizes


def test_finetune_with_a_last_batch_of_one_image(one_thread):
    """129 images in batches of 128 once left a batch of one, which BatchNorm refuses in training mode."""
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (129, 1, 28, 28), dtype=np.uint8))
    labels = torch.from_numpy(rng.integers(0, 2, 129)).long()
    train = ImageSet(images, labels, "binary-class", ("a", "b"), ("x",), torch.zeros(129, dtype=torch.long),
                     "train", 28)
    model = Classifier(backbone("resnet18"), 2)
    out = adapt.adapt(model, "finetune", train, train, train, epochs=1, progress=False)
    assert len(out["history"]) == 1 and out["test_scores"].shape == (129, 2)


def test_a_bad_lr_grid_is_one_clear_line():
    with pytest.raises(ParameterError, match=r"finetune_lrs=0 is not allowed; expected a number with 0 < finetune_lrs"):
        parameters(profile="smoke", finetune_lrs=[0])
    with pytest.raises(ParameterError, match=r"lrs=\[\] is empty"):
        AdaptConfig("scratch", "breastmnist", "finetune", lrs=[])


def test_multi_label_targets_get_one_sigmoid_per_label():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 3))
    y = np.c_[z[:, 0] > 0, z[:, 1] > 0.5].astype(int)  # two labels, each read from its own feature
    weight, bias, _ = adapt.fit_probe(z, y, z, y, adapt.MULTI_LABEL)
    assert weight.shape == (2, 3) and bias.shape == (2,)
    assert np.argmax(np.abs(weight), 1).tolist() == [0, 1]
