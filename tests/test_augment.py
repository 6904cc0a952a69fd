import pytest
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


def step_by_step_view(aug, images, g):
    """medlib's views before they were fused (one op per recipe step): the reference for the fast path."""
    import math

    import torch.nn.functional as F

    def uniform(n, low, high):
        return torch.rand(n, generator=g) * (high - low) + low

    def luma(x):
        return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]

    n = images.shape[0]
    x = images.float().div_(255).expand(-1, 3, -1, -1)
    area = uniform(n, *aug.crop_scale)
    ratio = torch.exp(uniform(n, math.log(aug.crop_ratio[0]), math.log(aug.crop_ratio[1])))
    w, h = torch.sqrt(area * ratio).clamp(max=1.0), torch.sqrt(area / ratio).clamp(max=1.0)
    cx, cy = (torch.rand(n, generator=g) * 2 - 1) * (1 - w), (torch.rand(n, generator=g) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n, generator=g) < aug.hflip, -1.0, 1.0)
    zero = torch.zeros_like(w)
    theta = torch.stack([torch.stack([w * flip, zero, cx], 1), torch.stack([zero, h, cy], 1)], 1)
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), mode="bilinear",
                      padding_mode="reflection", align_corners=False)
    if aug.jitter > 0:
        on = (torch.rand(n, generator=g) < aug.jitter_p).view(n, 1, 1, 1)
        b, c, s = (uniform(n, max(0.0, 1 - aug.jitter), 1 + aug.jitter).view(n, 1, 1, 1) for _ in range(3))
        y = x * b
        mean = luma(y).mean(dim=(2, 3), keepdim=True)
        y = (y - mean) * c + mean
        y = ((y - luma(y)) * s + luma(y)).clamp_(0, 1)
        if aug.gamma > 0:
            y = y ** torch.exp(uniform(n, -math.log1p(aug.gamma), math.log1p(aug.gamma))).view(n, 1, 1, 1)
        x = torch.where(on, y, x)
    if aug.grey_p > 0:
        x = torch.where((torch.rand(n, generator=g) < aug.grey_p).view(n, 1, 1, 1), luma(x).expand_as(x), x)
    if aug.solarize_p > 0:
        x = torch.where((torch.rand(n, generator=g) < aug.solarize_p).view(n, 1, 1, 1) & (x >= 0.5), 1 - x, x)
    return (x - 0.5) / 0.5


@pytest.mark.parametrize("view", ["SIMCLR_VIEW", "BYOL_VIEWS[1]", "SUPERVISED_VIEW"])
@pytest.mark.parametrize("channels,size", [(3, 28), (1, 64)])
def test_fast_views_equal_the_step_by_step_recipe(view, channels, size):
    from medlib import augment

    aug = eval(view, vars(augment))
    images = torch.randint(0, 256, (64, channels, size, size), dtype=torch.uint8)
    g_fast, g_ref = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    fast = aug(images, g_fast)
    assert fast.is_contiguous(memory_format=torch.channels_last) and -1 <= fast.min() <= fast.max() <= 1
    assert torch.allclose(fast, step_by_step_view(aug, images, g_ref), atol=1e-5)
    assert torch.equal(g_fast.get_state(), g_ref.get_state())  # the same random numbers, in the same order
