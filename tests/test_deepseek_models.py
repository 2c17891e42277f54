"""The registered `deepseek_moe` and `deepseek_v3` models: their own fields (defaults from the UoE
release's LRA baselines, range checks naming the fix), the parts they are built from, parameter
counts against a hand count, the causal form of MLA for a causal task, a sequence's logits alone
and inside a batch (training mode included: V3 updates its bias after routing), and the bias
moving only in training mode."""

from __future__ import annotations

import pytest
import torch

from models.config import ModelConfig, ModelTask
from models.deepseek.mla import MultiHeadLatentAttention
from models.deepseek.model import DeepSeekMoEFields, DeepSeekV3Fields
from models.deepseek.moe import RoutedExperts, SwiGLUFFN
from models.errors import InputError
from models.layers.attention import MultiHeadAttention
from models.layers.classifier import parameter_counts
from models.registry import build_model

CFG = ModelConfig(dim=64, depth=2, heads=2, ffn_dim=128)
TASK = ModelTask(num_classes=5, vocab_size=30, num_inputs=1, max_len=24)


def _tokens(batch: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 30, (batch, 24), generator=gen)
    lengths = torch.tensor([24, 13, 5][:batch])
    return tokens.masked_fill(torch.arange(24)[None] >= lengths[:, None], 0), lengths


def test_defaults_follow_the_released_lra_baselines() -> None:
    for own in (DeepSeekMoEFields(), DeepSeekV3Fields()):
        assert (own.routed_experts, own.shared_experts, own.active_experts) == (7, 1, 3)
        assert own.expert_width == 16
    v3 = DeepSeekV3Fields()
    assert (v3.seq_balance_weight, v3.bias_update_speed, v3.routed_scaling) == (1e-4, 1e-3, 1.0)


@pytest.mark.parametrize(
    ("fields", "settings", "message"),
    [
        (DeepSeekMoEFields, {"active_experts": 8}, "model.active_experts=8"),
        (DeepSeekMoEFields, {"shared_experts": -1}, "model.shared_experts=-1"),
        (DeepSeekMoEFields, {"expert_balance_weight": -0.1}, "expert_balance_weight"),
        (DeepSeekV3Fields, {"expert_groups": 2}, "model.expert_groups=2"),
        (DeepSeekV3Fields, {"routed_experts": 8, "expert_groups": 4, "groups_per_token": 5},
         "model.groups_per_token=5"),
        (DeepSeekV3Fields, {"routed_experts": 8, "expert_groups": 4, "active_experts": 3},
         "model.active_experts=3 exceeds"),
        (DeepSeekV3Fields, {"routed_scaling": 0.0}, "model.routed_scaling"),
    ],
)  # fmt: skip
def test_fields_refuse_out_of_range_settings(fields, settings, message) -> None:
    with pytest.raises(InputError, match=message):
        fields(**settings)


def test_v3_needs_a_head_width_divisible_by_four() -> None:
    with pytest.raises(InputError, match="divisible by 4"):
        build_model("deepseek_v3", ModelConfig(dim=24, heads=4), TASK)


def _routed_expert_params(d: int, width: int) -> int:
    return d * 2 * width + width * d  # SwiGLU: [gate | up] then down, no biases


@pytest.mark.parametrize("name", ["deepseek_moe", "deepseek_v3"])
def test_parts_and_parameter_counts(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, CFG, TASK)
    block = model.encoder.blocks[0]
    routed, shared = block.ffn.routed, block.ffn.shared
    assert isinstance(routed, RoutedExperts) and isinstance(shared, SwiGLUFFN)
    assert routed.w_up.shape == (7, 64, 32) and routed.w_down.shape == (7, 16, 64)
    assert routed.cfg.top_k == 3 and shared.w1.out_features == 16
    assert routed.ds.router == ("softmax" if name == "deepseek_moe" else "sigmoid_bias")
    if name == "deepseek_v3":
        mixer = block.mixer
        assert isinstance(mixer, MultiHeadLatentAttention) and not mixer.causal
        assert (mixer.wq_a.out_features, mixer.kv_rank) == (32, 32)
        assert (mixer.nope_dim, mixer.rope_dim, mixer.v_dim) == (16, 16, 32)
    else:
        assert isinstance(block.mixer, MultiHeadAttention)
    total, active = parameter_counts(model)
    per_expert = _routed_expert_params(64, 16)
    assert total - active == CFG.depth * (7 - 3) * per_expert
    ffn = 7 * per_expert + 64 * 7 + 3 * 64 * 16  # routed experts, router, shared expert
    assert sum(p.numel() for p in block.ffn.parameters()) == ffn


def test_a_causal_task_builds_causal_latent_attention() -> None:
    causal = ModelTask(num_classes=30, vocab_size=30, num_inputs=1, max_len=24, causal=True)
    model = build_model("deepseek_v3", CFG, causal)
    assert all(block.mixer.causal for block in model.encoder.blocks)


@pytest.mark.parametrize("name", ["deepseek_moe", "deepseek_v3"])
@pytest.mark.parametrize("train", [False, True])
def test_a_sequence_gets_the_same_logits_alone_and_in_a_batch(name: str, train: bool) -> None:
    tokens, lengths = _tokens()
    logits = []
    for batch in (slice(0, 3), slice(1, 2)):
        torch.manual_seed(0)
        model = build_model(name, CFG, TASK).train(train)
        with torch.no_grad():
            logits.append(model((tokens[batch],), (lengths[batch],)).logits)
    torch.testing.assert_close(logits[1], logits[0][1:2], rtol=1e-5, atol=1e-6)


def test_v3_bias_moves_in_training_only() -> None:
    torch.manual_seed(0)
    model = build_model("deepseek_v3", CFG, TASK, {"bias_update_speed": 0.01})
    biases = [b.ffn.routed.expert_bias for b in model.encoder.blocks]
    tokens, lengths = _tokens()
    model.eval()
    with torch.no_grad():
        model((tokens,), (lengths,))
    assert all(not b.any() for b in biases)
    model.train()
    model((tokens,), (lengths,))
    assert all(b.abs().max() == pytest.approx(0.01) for b in biases)
