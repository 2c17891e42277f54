"""Checks every registered model must pass, one test per model through the `model_name`
fixture (tests/conftest.py: `pytest --model NAME` or `bench check-model NAME` runs them for one).

Models are discovered at collection time, so a model added in `baselines/` (or any package in
its own package) is tested here with no edit: built at the LRA tiny config for ListOps,
forward + backward on a padded batch, padding invariance of the logits, parameter counts.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench import registries
from models.config import ModelConfig, ModelTask
from models.layers.classifier import parameter_counts
from models.registry import build_model, own_fields

# Models that reproduce a released implementation's padding handling on purpose; the xfail is
# strict, so the entry must go when the model changes.
PADDING_SENSITIVE = {
    "uoe_paper": "released UoE code routes padding like real tokens (models/uoe/routing.py)",
}
LENGTHS = torch.tensor([128, 77, 5, 1])
# Models without experts: every parameter is active (hand counts in `_dense_parameter_count`).
DENSE = {"full_attention", "linformer", "performer", "performer_relu"}


def _setting() -> tuple[ModelConfig, ModelTask, dict]:
    """The tiny LRA config for ListOps, its model-facing task, and the scale's settings of
    models' own fields."""
    scale = registries.SUITES.get("lra").scales["tiny"]
    cfg = scale.resolve("listops")
    task = registries.TASKS.get("lra/listops").model_task(cfg.data.max_len)
    return cfg.model, task, dict(scale.model_own)


def _build(name: str) -> tuple[torch.nn.Module, int, int]:
    """(model, vocab size, max_len) at the tiny LRA config for ListOps, seeded."""
    cfg, task, own = _setting()
    torch.manual_seed(0)
    model = build_model(name, cfg, task, own)
    return model, task.vocab_size, task.max_len


def _padded_batch(vocab: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(1, vocab, (len(LENGTHS), max_len), generator=gen)  # (B, L)
    positions = torch.arange(max_len)[None, :]  # (1, L)
    tokens = tokens.masked_fill(positions >= LENGTHS[:, None], 0)  # padding id 0
    return tokens, LENGTHS.clone()


def test_models_are_discovered() -> None:
    assert {"full_attention", "linformer", "performer"} <= set(registries.MODELS.names())


def test_forward_backward_on_a_padded_batch_is_finite(model_name: str) -> None:
    model, vocab, max_len = _build(model_name)
    model.train()
    tokens, lengths = _padded_batch(vocab, max_len)
    out = model((tokens,), (lengths,))
    assert out.logits.shape == (len(LENGTHS), 10)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.aux_loss).all()
    loss = F.cross_entropy(out.logits, torch.arange(len(LENGTHS))) + out.aux_loss
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is None or torch.isfinite(g).all() for g in grads), "non-finite gradient"
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0, "no gradient at all"


@pytest.mark.model_contract(xfail=PADDING_SENSITIVE)
def test_padded_positions_do_not_change_the_logits(model_name: str) -> None:
    model, vocab, max_len = _build(model_name)
    model.eval()
    tokens, lengths = _padded_batch(vocab, max_len)
    with torch.no_grad():
        before = model((tokens,), (lengths,)).logits
        changed = tokens.clone()
        pad = torch.arange(max_len)[None, :] >= lengths[:, None]  # (B, L)
        changed[pad] = torch.randint(1, vocab, (int(pad.sum()),))
        after = model((changed,), (lengths,)).logits
        torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
        changed[2, 0] = tokens[2, 0] % (vocab - 1) + 1  # a real token does change them
        assert not torch.allclose(model((changed,), (lengths,)).logits[2], before[2])


def _dense_parameter_count(name: str, cfg: ModelConfig, task: ModelTask, own: dict) -> int | None:
    """Parameters of a dense model written out from its config, or None (no count here).

    Embeddings (token + position); per block two LayerNorms, qkv Linear(D, 3D), out Linear(D, D)
    and the FFN Linear(D, H), Linear(H, D), all with biases; the final LayerNorm; the head
    Linear(D, ffn_dim), ReLU, Linear(ffn_dim, classes). Linformer adds its E and F, each
    (min(proj_len, max_len), max_len), per layer; Performer's projection is a buffer, not a
    parameter, so it counts as full attention. At the tiny config (D 32, 2 blocks, FFN 64,
    vocab 16, max_len 128, 10 classes): 4608 + 2 * 8544 + 64 + 2762 = 24522 for full attention,
    plus 2 * 2 * 32 * 128 for Linformer (proj_len 32).
    """
    d, h, depth = cfg.dim, cfg.ffn_dim, cfg.depth
    if name not in DENSE:
        return None
    embeddings = (task.vocab_size + task.max_len) * d
    block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * h + h) + (h * d + d)
    if name == "linformer":
        block += 2 * min(own_fields(name, own).proj_len, task.max_len) * task.max_len
    head_in = d if task.num_inputs == 1 else 4 * d
    head = (head_in * h + h) + (h * task.num_classes + task.num_classes)
    return embeddings + depth * block + 2 * d + head


def test_parameter_counts(model_name: str) -> None:
    """Every model: 0 < active <= total. Dense models: all parameters active, and the total
    equals the count written out from the config (`_dense_parameter_count`)."""
    model, _, _ = _build(model_name)
    total, active = parameter_counts(model)
    assert 0 < active <= total
    want = _dense_parameter_count(model_name, *_setting())
    if want is not None:
        assert active == total == want
