import numpy as np
import pytest
import torch

from medlib import explain
from medlib.data import ImageSet
from medlib.models import Classifier, backbone
from medlib.plots import arm_label
from medlib.validation import ParameterError


def _model(stem="cifar", seed=0):
    torch.manual_seed(seed)
    return Classifier(backbone("resnet18", stem), 2).eval()


def _images(n=4, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, size, size), generator=g, dtype=torch.uint8)


def test_cam_layer_is_the_deepest_block_with_a_usable_map():
    assert explain.block_sizes(_model("imagenet"), 28) == {"layer1": (7, 7), "layer2": (4, 4), "layer3": (2, 2),
                                                           "layer4": (1, 1)}
    assert explain.cam_layer(_model("imagenet"), 28) == "layer2"
    assert explain.cam_layer(_model("cifar"), 28) == "layer4"
    assert explain.cam_layer(_model("imagenet"), 128) == "layer4"


def test_gradcam_map_has_the_image_shape_is_finite_and_scaled():
    model = _model()
    images = _images()
    maps = explain.gradcam(model, images, [0, 1, 0, 1])
    assert maps.shape == (4, 28, 28) and np.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1 + 1e-6
    again = explain.gradcam(model, images, [0, 1, 0, 1])
    np.testing.assert_allclose(maps, again, atol=1e-6)


def test_gradcam_points_at_the_only_structure_in_the_image():
    """Mid-grey images (about zero after normalisation, so about zero activations: no conv biases,
    BatchNorm at its initial statistics) with a textured patch in the top-left corner; the class score is
    the plain sum of the pooled features, so the map must sit on the patch (layer4's receptive field is
    large, so some of it spills over)."""
    torch.manual_seed(0)
    model = Classifier(backbone("resnet18", "cifar"), 2).eval()
    with torch.no_grad():
        model.head.weight.copy_(torch.stack([-torch.ones(512), torch.ones(512)]))
        model.head.bias.zero_()
    images = torch.full((3, 1, 28, 28), 128, dtype=torch.uint8)
    images[:, :, 2:10, 2:10] = _images(n=3)[:, :, 2:10, 2:10]
    maps = explain.gradcam(model, images, [1, 1, 1], layer="layer4")
    for m in maps:  # the peak lies in the patch's quadrant, the opposite quadrant stays cold
        row, col = np.unravel_index(m.argmax(), m.shape)
        assert row < 14 and col < 14
        assert m[:14, :14].mean() > 3 * m[14:, 14:].mean()


def test_pick_images_takes_classes_in_turn_and_is_seeded():
    labels = torch.tensor([0] * 10 + [1] * 3)
    test = ImageSet(torch.zeros(13, 1, 28, 28, dtype=torch.uint8), labels, "binary-class", ("a", "b"), ("x",),
                    torch.zeros(13, dtype=torch.long), "test", 28)
    index = explain.pick_images(test, 4, seed=0)
    assert labels[index].tolist() == [0, 1, 0, 1]
    assert torch.equal(index, explain.pick_images(test, 4, seed=0))
    assert len(explain.pick_images(test, 8, seed=1)) == 8 and labels[explain.pick_images(test, 8)].sum() == 3


def test_separability_is_high_for_separate_classes_and_tsne_is_2d_and_seeded():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    separate = rng.normal(size=(60, 16)) + labels[:, None] * np.r_[8.0, np.zeros(15)] + np.r_[-4.0, np.zeros(15)] + 1
    mixed = rng.normal(size=(60, 16)) + 1
    assert explain.separability(separate, labels) > 0.5 > abs(explain.separability(mixed, labels))
    assert np.isnan(explain.separability(mixed, np.zeros(60)))
    xy = explain.tsne(separate, seed=0)
    assert xy.shape == (60, 2) and np.allclose(xy, explain.tsne(separate, seed=0))


def _explain_configs(protocols=("linear",)):
    from dataclasses import replace

    from medlib.profiles import parameters
    from medlib.study import adapt_configs
    P = parameters(profile="smoke", max_train_images=32)
    configs = [replace(c, keep_model=True) for c in adapt_configs(P, "breastmnist", arms=["scratch"],
                                                                  protocols=list(protocols))]
    return [explain.ExplainConfig(c, 3, explain.panel_layer(configs), max_points=40) for c in configs]


def test_explanation_is_a_stored_run_read_back_identically_without_the_models_weights(real_data):
    from medlib.store import RunStore
    evaluations = _explain_configs()
    panel = explain.gradcam_panel(evaluations)
    embeddings, scores, classes = explain.embedding_panel(evaluations)
    assert panel["layer"] == "layer2" and panel["grid"] == (4, 4) and len(panel["labels"]) == 3
    name = arm_label("scratch")
    assert panel["images"].dtype == torch.uint8 and panel["maps"][name].shape == (3, 28, 28)
    xy, labels, score = embeddings[("scratch", "linear")]
    assert xy.shape == (40, 2) and len(labels) == 40 and np.isfinite(score)
    assert classes == ("malignant", "normal, benign")
    store = RunStore()
    weights = list(store.root.rglob("*.pt"))
    assert weights
    for path in weights:
        path.unlink()
    again = explain.gradcam_panel(evaluations)
    assert torch.equal(again["images"], panel["images"]) and again["labels"] == panel["labels"]
    assert all(np.array_equal(again[k][name], panel[k][name]) for k in ("maps", "probs"))
    embeddings2, scores2, classes2 = explain.embedding_panel(evaluations)
    xy2, labels2, score2 = embeddings2[("scratch", "linear")]
    assert np.array_equal(xy2, xy) and np.array_equal(labels2, labels) and score2 == score
    assert scores2 == scores and classes2 == classes


def test_explain_config_is_refused_without_a_kept_model_or_with_an_unknown_block(real_data):
    from dataclasses import replace
    ec = _explain_configs()[0]
    with pytest.raises(ParameterError, match="keep_model=True"):
        explain.ExplainConfig(replace(ec.adapt, keep_model=False), 3, "layer2")
    with pytest.raises(ParameterError, match="layer='layer5'"):
        explain.ExplainConfig(ec.adapt, 3, "layer5")
