"""medlib's NT-Xent is lightly's NTXentLoss restated without boolean indexing: same loss, same gradients."""

import pytest
import torch
from lightly.loss import NTXentLoss as LightlyNTXent

from medlib.losses import NTXentLoss


@pytest.mark.parametrize("n, dim, temperature", [(2, 3, 0.5), (16, 128, 0.5), (64, 32, 0.1)])
def test_nt_xent_equals_lightlys_in_value_and_gradient(n, dim, temperature):
    g = torch.Generator().manual_seed(n)
    z0, z1 = (torch.randn(n, dim, generator=g, requires_grad=True) for _ in range(2))
    expected = LightlyNTXent(temperature=temperature)(z0, z1)
    got = NTXentLoss(temperature)(z0, z1)
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-6)
    for a, b in zip(torch.autograd.grad(got, (z0, z1)), torch.autograd.grad(expected, (z0, z1))):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_nt_xent_rewards_matching_views():
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    assert NTXentLoss()(z, z) < NTXentLoss()(z, z.roll(1, dims=0))
