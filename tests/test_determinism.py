"""Every registered model trains bit-repeatably on the CPU at a fixed seed and thread count.

Each model is built at the tiny LRA ListOps config and trained twice for a few AdamW steps on
padded random batches with 2 intra-op threads; the losses and every parameter after the last
step must be equal bit for bit. Parallel atomic accumulation (the backward of `bias[index]`
on the CPU) made `switch` and `uoe` differ from run to run with 2 threads.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from bench import registries
from models.registry import build_model

THREADS = 2
STEPS = 3  # switch on the old code repeated its first 2 steps and differed at the 3rd
BATCH = 16


@pytest.fixture
def two_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


def _train(name: str) -> tuple[list[float], list[torch.Tensor]]:
    """(loss of each step, parameters after the last step) of a seeded short training run."""
    scale = registries.SUITES.get("lra").scales["tiny"]
    cfg = scale.resolve("listops")
    task = registries.TASKS.get("lra/listops").model_task(cfg.data.max_len)
    torch.manual_seed(0)
    model = build_model(name, cfg.model, task, scale.model_own)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1)
    length = task.max_len
    losses = []
    for _ in range(STEPS):
        tokens = torch.randint(1, task.vocab_size, (BATCH, length), generator=gen)  # (B, L)
        lengths = torch.randint(length // 2, length + 1, (BATCH,), generator=gen)  # (B,)
        tokens = tokens.masked_fill(torch.arange(length)[None] >= lengths[:, None], 0)
        labels = torch.randint(0, task.num_classes, (BATCH,), generator=gen)
        out = model((tokens,), (lengths,))
        loss = F.cross_entropy(out.logits, labels) + out.aux_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, [p.detach().clone() for p in model.parameters()]


def test_training_repeats_bit_for_bit(model_name: str, two_threads: None) -> None:
    first_losses, first_params = _train(model_name)
    second_losses, second_params = _train(model_name)
    assert first_losses == second_losses
    pairs = enumerate(zip(first_params, second_params, strict=True))
    differing = [i for i, (a, b) in pairs if not a.equal(b)]
    assert not differing, f"{model_name}: parameters {differing} differ between identical runs"


@pytest.mark.parametrize("activation", ["gelu", "swiglu"])
def test_moe_ffn_gradients_repeat_at_a_racy_shape(activation: str, two_threads: None) -> None:
    """The expert-bias gradient at a shape where `bias[index]`'s parallel atomic backward
    differed in every one of 100 tries (8192 rows of width 96 onto 2 experts)."""
    from models.moe.experts import MoEConfig, MoEFFN

    torch.manual_seed(0)
    ffn = MoEFFN(MoEConfig(16, 96, 2, 1, "top_k", activation))
    x = torch.randn(8, 1024, 16)  # (B, L, D): 8192 tokens, top-1
    mask = torch.ones(8, 1024, dtype=torch.bool)
    grad = torch.randn(8, 1024, 16)

    def grads() -> list[torch.Tensor]:
        y, _ = ffn(x, mask)
        return list(torch.autograd.grad(y, list(ffn.parameters()), grad))

    first = grads()
    for _ in range(3):
        assert all(a.equal(b) for a, b in zip(first, grads(), strict=True))
