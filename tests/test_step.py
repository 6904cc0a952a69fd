"""The training step: eager on the CPU, the same update as a hand-written step; CUDA graphs are refused off CUDA
(the captured path is checked on a GPU by benchmarks/gpu_check.sh, CHECKS=graphs)."""

import copy

import pytest
import torch

from medlib.models import backbone
from medlib.pretrain import BYOL, SimCLR
from medlib.step import TrainStep, sgd


@pytest.mark.parametrize("make", [SimCLR, BYOL])
def test_step_is_loss_backward_sgd_and_target_update(make, one_thread):
    torch.manual_seed(0)
    method = make(backbone("resnet18"))
    reference = copy.deepcopy(method)
    images = torch.randint(0, 256, (8, 3, 28, 28), dtype=torch.uint8)
    step = TrainStep(method, sgd(method, 0.1, 5e-4),
                     lambda: method.loss(images, None, torch.Generator().manual_seed(1)), amp=False)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    for k in range(2):
        loss = step(0.1 / (k + 1), reference.target_weight(k, 10))
        optimizer.param_groups[0]["lr"] = 0.1 / (k + 1)
        expected = reference.loss(images, None, torch.Generator().manual_seed(1))
        optimizer.zero_grad()
        expected.backward()
        optimizer.step()
        reference.update_targets(reference.target_weight(k, 10))
        assert torch.equal(loss, expected.detach()) and not loss.requires_grad
    for (name, a), b in zip(method.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), name


def test_byol_target_update_takes_a_number_or_a_device_tensor():
    torch.manual_seed(0)
    method = BYOL(backbone("resnet18"))
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(1.0)
    other = copy.deepcopy(method)
    method.update_targets(0.25)
    other.update_targets(torch.tensor(0.25))
    for a, b in zip(method.encoder_momentum.parameters(), other.encoder_momentum.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_cuda_graphs_are_refused_off_cuda():
    method = SimCLR(backbone("resnet18"))
    with pytest.raises(ValueError, match="graphed=True needs a CUDA device; the method is on cpu"):
        TrainStep(method, sgd(method, 0.1, 0.0), lambda: None, graphed=True)
