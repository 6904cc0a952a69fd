import torch

from benchmarks.op_counts import aten_calls
from medlib.augment import SIMCLR_VIEW, SUPERVISED_VIEW, ViewAugment, to_float
from medlib.models import backbone
from medlib.pretrain import SimCLR


def test_views_are_per_sample_seeded_and_normalised():
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    a = SIMCLR_VIEW(images, torch.Generator().manual_seed(0))
    b = SIMCLR_VIEW(images, torch.Generator().manual_seed(0))
    assert a.shape == (64, 3, 28, 28) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    same = images[:1].expand(64, -1, -1, -1)
    views = SIMCLR_VIEW(same, torch.Generator().manual_seed(1))
    assert len({v.sum().item() for v in views}) == 64  # every sample got its own parameters


def test_identity_view_reproduces_the_image():
    images = torch.randint(0, 256, (8, 3, 28, 28), dtype=torch.uint8)
    identity = ViewAugment(crop_scale=(1, 1), crop_ratio=(1, 1), hflip=0, jitter=0, grey_p=0)
    assert torch.allclose(identity(images), to_float(images), atol=1e-5)


def test_flip_only_view_mirrors():
    images = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    flip = ViewAugment(crop_scale=(1, 1), crop_ratio=(1, 1), hflip=1.0, jitter=0, grey_p=0)
    assert torch.allclose(flip(images), to_float(images).flip(-1), atol=1e-5)
    assert SUPERVISED_VIEW(images).shape == (4, 3, 28, 28)


def test_simclr_draws_both_views_in_one_call():
    """Rows i and n + i are two views of image i, drawn by one batched call: about half the operator calls (on a
    GPU, kernels) of a call per view."""
    images = torch.randint(0, 256, (64, 3, 28, 28), dtype=torch.uint8)
    simclr, g = SimCLR(backbone("resnet18")), torch.Generator().manual_seed(0)
    views = simclr.views(images, g)
    assert views.shape == (128, 3, 28, 28) and not torch.equal(views[:64], views[64:])
    assert aten_calls(lambda: simclr.views(images, g)) < 1.2 * aten_calls(lambda: SIMCLR_VIEW(images, g))
