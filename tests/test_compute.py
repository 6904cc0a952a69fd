"""The compute precision (bf16 autocast where the device has it natively), the CUDA-graph switch and the fused BYOL
momentum update."""

import copy

import pytest
import torch
from lightly.models.utils import update_momentum

from medlib import compute
from medlib.models import backbone
from medlib.pretrain import BYOL, PretrainConfig
from medlib.store import run_key
from medlib.validation import ParameterError

CPU = torch.device("cpu")


@pytest.mark.parametrize("choice", ["fp32", "bf16"])
def test_medlib_precision_overrides_the_device(monkeypatch, choice):
    monkeypatch.setenv("MEDLIB_PRECISION", choice)
    assert compute.precision(CPU) == choice
    conv = torch.nn.Conv2d(3, 4, 3)
    with compute.autocast(CPU):
        out = conv(torch.randn(1, 3, 8, 8))
    assert out.dtype == (torch.bfloat16 if choice == "bf16" else torch.float32)
    with compute.autocast(CPU, enabled=False):
        assert conv(torch.randn(1, 3, 8, 8)).dtype == torch.float32


def test_auto_uses_bf16_only_where_the_cpu_has_it(monkeypatch):
    monkeypatch.delenv("MEDLIB_PRECISION", raising=False)
    assert compute.precision(CPU) == ("bf16" if compute.native_bf16(CPU) else "fp32")
    monkeypatch.setattr(compute, "native_bf16", lambda device: False)
    assert compute.precision(CPU) == "fp32"


def test_a_bad_precision_is_refused_with_the_allowed_values(monkeypatch):
    monkeypatch.setenv("MEDLIB_PRECISION", "fp16")
    with pytest.raises(ParameterError, match="MEDLIB_PRECISION.*fp16.*auto.*bf16.*fp32"):
        compute.precision(CPU)


def test_results_of_one_precision_are_never_read_as_the_other(monkeypatch):
    config = PretrainConfig(arm="ssl-byol", sources=("pneumoniamnist",)).to_dict()
    keys = []
    for choice in ("fp32", "bf16"):
        monkeypatch.setenv("MEDLIB_PRECISION", choice)
        keys.append(run_key("pretrain", config))
    assert keys[0] != keys[1]


def test_byol_momentum_update_matches_lightlys():
    torch.manual_seed(0)
    method = BYOL(backbone("resnet18"))
    with torch.no_grad():  # move the online network away from its momentum copy
        for p in [*method.encoder.parameters(), *method.projection.parameters()]:
            p.add_(torch.randn_like(p))
    expected = copy.deepcopy(method)
    method.update_targets(method.target_weight(step=3, total=10))
    m = 1 - 0.01 * (1 + torch.cos(torch.tensor(3 / 9 * torch.pi)).item()) / 2  # lightly's cosine_schedule
    update_momentum(expected.encoder, expected.encoder_momentum, m)
    update_momentum(expected.projection, expected.projection_momentum, m)
    got = dict(method.named_parameters()) | {k: v for k, v in method.state_dict().items()}
    for name, value in expected.state_dict().items():
        assert torch.allclose(got[name], value, atol=1e-6), name
    assert not torch.equal(method.encoder_momentum.conv1.weight, expected.encoder.conv1.weight)
    assert not any(p.requires_grad or p.grad_fn for p in method.encoder_momentum.parameters())  # no graph kept


def test_cuda_graphs_only_on_cuda_and_switched_off_by_the_environment(monkeypatch):
    monkeypatch.delenv("MEDLIB_CUDA_GRAPHS", raising=False)
    assert compute.cuda_graphs(torch.device("cuda")) and not compute.cuda_graphs(CPU)
    monkeypatch.setenv("MEDLIB_CUDA_GRAPHS", "0")
    assert not compute.cuda_graphs(torch.device("cuda"))
    monkeypatch.setenv("MEDLIB_CUDA_GRAPHS", "yes")
    with pytest.raises(ParameterError, match="MEDLIB_CUDA_GRAPHS.*yes.*0.*1"):
        compute.cuda_graphs(CPU)
