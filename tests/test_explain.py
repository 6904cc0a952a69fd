import numpy as np
import torch

from medlib import explain
from medlib.data import ImageSet
from medlib.models import Classifier, backbone


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
