"""One pre-training step (loss, backward, SGD, BYOL's target update), run eagerly or replayed as a CUDA graph.

At MedMNIST's sizes a ResNet-18 step on a GPU is several hundred small kernels, and the host launching them, not
their arithmetic, sets the pace (benchmarks/README.md). On CUDA the whole step is therefore captured once as a
CUDA graph and then replayed, one launch per step: PyTorch's whole-network capture (``torch.cuda.graph``). What
changes from step to step is read from tensors the graph was captured with: the batch's indices (held by the
caller's ``loss``), the learning rate (a device tensor, read by fused SGD) and BYOL's target weight; the random
views come from generators registered with the graph, whose offsets advance with every replay, so that a replay
draws the numbers an eager step would. The first :data:`WARMUP_STEPS` steps run eagerly on a side stream, as
capture requires; they are real training steps.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from .compute import autocast, cuda_graphs

WARMUP_STEPS = 3


def sgd(method: nn.Module, lr: float, weight_decay: float) -> torch.optim.SGD:
    """SGD with momentum 0.9 over ``method``'s parameters; on CUDA fused, with the learning rate a device tensor
    (so that a captured step reads the scheduled value instead of the one it was captured with)."""
    device = next(method.parameters()).device
    cuda = device.type == "cuda"
    return torch.optim.SGD(method.parameters(), lr=torch.tensor(lr, device=device) if cuda else lr, momentum=0.9,
                           weight_decay=weight_decay, fused=True if cuda else None)


class TrainStep:
    """``step(lr, target_weight)``: ``loss()``, backward, an SGD step at ``lr`` and ``method.update_targets``.

    ``graphed`` (default: :func:`medlib.compute.cuda_graphs`, i.e. on CUDA) captures the step as a CUDA graph
    after :data:`WARMUP_STEPS` eager steps; ``loss`` must then read its inputs from tensors whose storage stays
    put (copy each batch into them), and every generator it draws from must be in ``generators``. The returned
    loss is, on the graph path, the same tensor every step, overwritten by the next replay.
    """

    def __init__(self, method: nn.Module, optimizer: torch.optim.Optimizer, loss: Callable[[], torch.Tensor],
                 amp: bool = True, graphed: bool | None = None, generators: Iterable[torch.Generator] = ()):
        self.method, self.optimizer, self.loss_fn, self.amp = method, optimizer, loss, amp
        self.device = next(method.parameters()).device
        self.graphed = cuda_graphs(self.device) if graphed is None else graphed
        if self.graphed and self.device.type != "cuda":
            raise ValueError(f"graphed=True needs a CUDA device; the method is on {self.device}")
        self.generators = tuple(generators)
        cuda = self.device.type == "cuda"
        self.target_weight = torch.zeros((), device=self.device) if cuda else None  # read by the (captured) step
        self.graph, self.loss, self.warm = None, None, 0

    def __call__(self, lr: float, target_weight: float = 0.0) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        if self.target_weight is not None:  # CUDA, graphed or not: the same target update (bit-identical runs)
            self.target_weight.fill_(target_weight)
            target_weight = self.target_weight
        if not self.graphed:
            return self._step(target_weight)
        if self.graph is None and self.warm < WARMUP_STEPS:
            self.warm += 1
            side, main = torch.cuda.Stream(self.device), torch.cuda.current_stream(self.device)
            side.wait_stream(main)
            with torch.cuda.stream(side):
                loss = self._step(target_weight)
            main.wait_stream(side)
            return loss
        if self.graph is None:
            self._capture()
        self.graph.replay()
        return self.loss

    def _step(self, target_weight: float | torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.amp):
            loss = self.loss_fn()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.method.update_targets(target_weight)
        return loss.detach()

    def _capture(self):
        self.graph = torch.cuda.CUDAGraph()
        for g in self.generators:
            self.graph.register_generator_state(g)
        self.optimizer.zero_grad(set_to_none=True)  # the gradients are allocated inside the graph's memory pool
        try:
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                self.loss = self._step(self.target_weight)
        except RuntimeError as e:
            raise RuntimeError(f"capturing the training step as a CUDA graph failed ({e}); "
                               "MEDLIB_CUDA_GRAPHS=0 runs it eagerly") from e
