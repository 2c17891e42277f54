"""The backbone options of `ModelConfig` (norm, rope, pool), honoured by every registered model:
each checked against an independent formula, and the config's refusal of unknown names."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.config import ModelConfig, ModelTask
from models.layers.rotary import RotaryStep
from models.registry import build_model
from models.uoe.model import UoEFields

TASK = ModelTask(num_classes=3, vocab_size=13, num_inputs=1, max_len=32)
BASE = ModelConfig(dim=16, depth=2, heads=2, ffn_dim=32)
OWN = {"proj_len": 8, "random_features": 16}  # models' own fields: each reads its own
RELEASED = dataclasses.replace(BASE, norm="rms", rope=True, pool="sum_over_L")


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([32, 20, 7])
    tokens = torch.randint(1, 13, (3, 32), generator=g)
    return tokens.masked_fill(torch.arange(32)[None, :] >= lengths[:, None], 0), lengths


def _build(name: str, cfg: ModelConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, cfg, TASK, OWN).eval()


def test_rotary_step_matches_complex_rotation_of_each_slices_second_half() -> None:
    """Independent form: the second half of each head slice as complex numbers x_2i + i x_2i+1,
    times exp(i t theta_i), then swapped in front of the first half."""
    torch.manual_seed(1)
    x = torch.randn(2, 10, 16)
    heads, dh = 2, 8
    got = RotaryStep(16, heads, max_len=12)(x)
    theta = torch.tensor([10000.0 ** (-2 * i / (dh // 2)) for i in range(dh // 4)])
    angle = torch.arange(10.0)[:, None] * theta[None, :]  # (L, Dh/4)
    turn = torch.polar(torch.ones_like(angle), angle)[None, :, None, :]  # (1, L, 1, Dh/4)
    slices = x.view(2, 10, heads, dh)
    pe = torch.view_as_complex(
        slices[..., dh // 2 :].reshape(2, 10, heads, dh // 4, 2).contiguous()
    )
    rotated = torch.view_as_real(pe * turn).flatten(-2)  # (B, L, H, Dh/2)
    want = torch.cat([rotated, slices[..., : dh // 2]], -1).reshape(2, 10, 16)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    assert torch.equal(
        got[:, 0].view(2, heads, dh)[..., dh // 2 :], x[:, 0].view(2, heads, dh)[..., : dh // 2]
    )
    with pytest.raises(ValueError, match="divisible by 4"):
        RotaryStep(12, 2, 8)  # Dh = 6


def test_every_model_takes_the_released_backbone(model_name: str) -> None:
    model = _build(model_name, RELEASED)
    for block in model.encoder.blocks:
        for norm in (block.mixer_norm, block.ffn_norm):
            assert isinstance(norm, torch.nn.RMSNorm) and norm.eps == 1e-6
            assert [n for n, _ in norm.named_parameters()] == ["weight"]  # no bias
        assert isinstance(block.rotary, RotaryStep)
    assert isinstance(model.encoder.norm, torch.nn.LayerNorm)  # final norm as released
    assert model.pooling == "sum_over_L"
    default = _build(model_name, BASE)
    assert all(
        isinstance(b.mixer_norm, torch.nn.LayerNorm) and b.rotary is None
        for b in default.encoder.blocks
    )
    tokens, lengths = _batch()
    with torch.no_grad():
        logits = model((tokens,), (lengths,)).logits
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["full_attention", "uoe"])
def test_each_option_acts_as_its_formula(name: str) -> None:
    tokens, lengths = _batch()
    mask = torch.arange(32)[None, :] < lengths[:, None]
    # pool: the head reads sum over real tokens / L, the padded length (hidden from a hook).
    model = _build(name, dataclasses.replace(BASE, pool="sum_over_L"))
    seen = {}
    model.encoder.register_forward_hook(lambda m, a, out: seen.update(hidden=out.hidden))
    with torch.no_grad():
        logits = model((tokens,), (lengths,)).logits
        pooled = (seen["hidden"] * mask[..., None]).sum(1) / 32
        torch.testing.assert_close(logits, model.head(pooled), rtol=1e-6, atol=1e-6)
    # norm: x / sqrt(mean x^2 + 1e-6) * w, no bias.
    model = _build(name, dataclasses.replace(BASE, norm="rms"))
    norm = model.encoder.blocks[0].mixer_norm
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        x = torch.randn(3, 5, 16)
        want = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.weight
        torch.testing.assert_close(norm(x), want, rtol=1e-6, atol=1e-6)
    # rope: the mixer sees the rotated norm output; positions matter for the mixer's input.
    model = _build(name, dataclasses.replace(BASE, rope=True))
    block = model.encoder.blocks[0]
    inputs = {}
    block.mixer.register_forward_hook(lambda m, a, out: inputs.update(x=a[0]))
    block.mixer_norm.register_forward_hook(lambda m, a, out: inputs.update(normed=out))
    with torch.no_grad():
        model((tokens,), (lengths,))
    torch.testing.assert_close(inputs["x"], block.rotary(inputs["normed"]), rtol=0, atol=0)
    assert not torch.allclose(inputs["x"], inputs["normed"])


@pytest.mark.parametrize(
    "fields, field, value",
    [
        (ModelConfig, "norm", "batch"),
        (ModelConfig, "pool", "cls"),
        (UoEFields, "routing_level", "patch"),
        (UoEFields, "capacity_rule", "all"),
    ],
)
def test_unknown_names_are_refused_naming_the_choices(fields: type, field: str, value: str) -> None:
    with pytest.raises(ValueError, match=rf"model\.{field}=.*is not one of"):
        fields(**{field: value})
