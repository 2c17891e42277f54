"""The causal (language-model) form of the shared encoder: `build_classifier` returns a
`LanguageModel` for a causal task, causal attention equals an independent masked softmax, and
full attention's logits at position t equal those of the prefix [0..t] run alone (the
definition of a causal model, checked without the probe)."""

from __future__ import annotations

import math

import pytest
import torch

from bench.measure.flops import analytic_flops, count_flops
from models.config import ModelConfig, ModelTask
from models.layers.attention import MultiHeadAttention
from models.layers.language_model import LanguageModel
from models.registry import build_model
from models.uoe.model import from_dense
from models.uoe.routing import Capacity, RoutingConfig

CFG = ModelConfig(dim=32, depth=2, heads=4, ffn_dim=64)
VOCAB = 23
TASK = ModelTask(num_classes=VOCAB, vocab_size=VOCAB, num_inputs=1, max_len=16, causal=True)


def _tokens(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, length), generator=gen)  # (B, L)


def test_causal_task_builds_a_language_model_with_per_position_logits() -> None:
    torch.manual_seed(0)
    model = build_model("full_attention", CFG, TASK).eval()
    assert isinstance(model, LanguageModel)
    tokens = _tokens(3, 16)
    out = model((tokens,), (torch.tensor([16, 9, 1]),))
    assert out.logits.shape == (3, 16, VOCAB)
    assert torch.isfinite(out.logits).all()


def _looped_attention(attn: MultiHeadAttention, x: torch.Tensor, causal: bool) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v per head, query t over keys 0..t (causal) or all, by loops."""
    batch, length, dim = x.shape
    qkv = attn.qkv(x)  # (B, L, 3D)
    q, k, v = qkv.split(dim, dim=-1)
    y = torch.zeros(batch, length, dim)
    hd = attn.head_dim
    for h in range(attn.heads):
        cols = slice(h * hd, (h + 1) * hd)
        for t in range(length):
            seen = t + 1 if causal else length
            per_b = torch.einsum("bd,bsd->bs", q[:, t, cols], k[:, :seen, cols]) / math.sqrt(hd)
            weights = per_b.softmax(-1)  # (B, seen)
            y[:, t, cols] = torch.einsum("bs,bsd->bd", weights, v[:, :seen, cols])
    return attn.out(y)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_a_looped_masked_softmax(causal: bool) -> None:
    torch.manual_seed(1)
    attn = MultiHeadAttention(32, 4, 0.0, causal=causal)
    x = torch.randn(2, 7, 32)
    got, _ = attn(x, torch.ones(2, 7, dtype=torch.bool))
    want = _looped_attention(attn, x, causal)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


# Models whose causal output is defined as the model run on the prefix; not Switch, whose
# capacity is a share of the batch's tokens (a prefix batch has fewer, so drops differ).
PREFIX_DEFINED = ["full_attention", "mixtral", "performer", "performer_relu", "uoe_causal"]


@pytest.mark.parametrize("name", PREFIX_DEFINED)
def test_logits_at_t_equal_the_prefix_run_alone(name: str) -> None:
    """Position t's logits from the full segment equal the last logits of tokens[:t+1] alone."""
    torch.manual_seed(2)
    model = build_model(name, CFG, TASK).eval()
    tokens = _tokens(2, 12, seed=3)
    with torch.no_grad():
        full = model((tokens,), (torch.tensor([12, 12]),)).logits  # (B, L, V)
        for t in range(12):
            prefix = tokens[:, : t + 1]
            alone = model((prefix,), (torch.full((2,), t + 1),)).logits[:, -1]  # (B, V)
            torch.testing.assert_close(full[:, t], alone, atol=1e-5, rtol=1e-5)


def test_causal_uoe_with_every_expert_equals_the_causal_dense_model() -> None:
    """The decomposition holds in causal form: SMHA's per-head causal mask over its slots is
    the dense causal mask when every head takes every token (uniform gate: weight 1)."""
    torch.manual_seed(4)
    dense = build_model("full_attention", CFG, TASK).eval()
    every = [
        RoutingConfig(n, n, Capacity("max_load"), balance_loss_weight=0.0)
        for n in (CFG.heads, CFG.experts)
    ]
    uoe = from_dense(dense, CFG, "corrected", routing=(every[0], every[1])).eval()
    with torch.no_grad():
        for name, p in uoe.named_parameters():
            if "router" in name:
                p.zero_()
    tokens = _tokens(3, 16, seed=5)
    lengths = torch.tensor([16, 11, 4])
    with torch.no_grad():
        want = dense((tokens,), (lengths,)).logits
        got = uoe((tokens,), (lengths,)).logits
    real = torch.arange(16)[None, :] < lengths[:, None]
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)


def test_classifier_mode_is_unchanged_by_the_causal_argument() -> None:
    """causal=False is the bidirectional attention every classifier had (a later key moves an
    earlier query's output)."""
    torch.manual_seed(3)
    attn = MultiHeadAttention(32, 4, 0.0)
    x = torch.randn(1, 6, 32)
    mask = torch.ones(1, 6, dtype=torch.bool)
    before, _ = attn(x, mask)
    x2 = x.clone()
    x2[:, -1] += 1.0
    after, _ = attn(x2, mask)
    assert (before[:, 0] - after[:, 0]).abs().max() > 1e-4


@pytest.mark.parametrize("name", ["full_attention", "performer", "switch", "uoe_causal"])
def test_language_model_analytic_flops_match_the_counted(name: str) -> None:
    """The LM head and the causal parts have formulas that add up to what runs."""
    torch.manual_seed(5)
    model = build_model(name, CFG, TASK).eval()
    tokens = _tokens(2, 16, seed=6)
    lengths = torch.tensor([16, 10])

    def forward() -> None:
        with torch.no_grad():
            model((tokens,), (lengths,))

    analytic = analytic_flops(model, forward)
    assert not analytic.missing
    assert analytic.components["lm_head"] == 2.0 * 2 * 16 * CFG.dim * VOCAB
    assert sum(analytic.components.values()) == pytest.approx(count_flops(forward).total)
