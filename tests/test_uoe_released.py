"""`uoe_paper` on the released backbone is the released UoE LRA model.

The reference below is written from what the released code computes (github
YujiaoYang-work/UoE, `long_range_modeling/`: `modeling.ParallelTransformer` and `Model`,
`sparse_attention_v3.SparseSelfAttention`, `process_v2.SwitchGate`/`preprocess`,
`mlps_v2.SwitchGate`/`U_MLP`, `model_wrapper.SCHead`; reference/uoe.md), token by token and
expert by expert in plain loops, and reads the parameters under their released names. It shares
no code with `models/`. Where the release leaves a choice open (`torch.topk` among equal
scores) it takes the earlier position, the rule `models/uoe/routing.py` documents.

Also: `load_released_state_dict` on a synthetic released state dict, and its refusals.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from bench import registries
from models.config import ModelConfig, ModelTask
from models.layers.classifier import parameter_counts
from models.uoe.model import UoEFields
from models.uoe.released import load_released_state_dict

D, HEADS, FFN, EXPERTS, TOP_K, ATTN_TOP_K, DEPTH = 16, 2, 32, 4, 2, 1, 2
VOCAB, CLASSES, L = 11, 3, 16
DH, HS = D // HEADS, FFN // EXPERTS
RELEASED = ModelConfig(
    dim=D,
    depth=DEPTH,
    heads=HEADS,
    ffn_dim=FFN,
    experts=EXPERTS,
    top_k=TOP_K,
    norm="rms",
    rope=True,
    pool="sum_over_L",
)
TASK = ModelTask(num_classes=CLASSES, vocab_size=VOCAB, num_inputs=1, max_len=L)
LENGTHS = [16, 9, 2]  # the last sequence is mostly padding: some head rows hold no real key


def released_state_dict(seed: int, heads: int = HEADS) -> dict[str, torch.Tensor]:
    """Random parameters under the released names and shapes (biases non-zero too)."""
    g = torch.Generator().manual_seed(seed)
    dh = D // heads

    def rand(*shape: int, scale: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    sd = {
        "model.embeddings.word_embeddings.weight": rand(VOCAB, D, scale=1.0),
        "model.embeddings.position_embeddings.weight": rand(L, D, scale=1.0),
        "model.norm.weight": 1 + rand(D, scale=0.1),
        "model.norm.bias": rand(D, scale=0.1),
        "seq_classifer.mlpblock.0.weight": rand(FFN, D),
        "seq_classifer.mlpblock.0.bias": rand(FFN, scale=0.1),
        "seq_classifer.mlpblock.2.weight": rand(CLASSES, FFN),
        "seq_classifer.mlpblock.2.bias": rand(CLASSES, scale=0.1),
    }
    for i in range(DEPTH):
        p = f"model.transformer_{i}."
        sd.update(
            {
                p + "norm1.weight": 1 + rand(D, scale=0.1),
                p + "norm2.weight": 1 + rand(D, scale=0.1),
                p + "mha.switch_gate.weight": rand(heads, D, scale=1.0),
                p + "mha.switch_gate.bias": rand(heads, scale=0.5),
                p + "mha.W_qkv.weight.0": rand(heads, D, 3 * dh),
                p + "mha.W_qkv.bias.0": rand(heads, 1, 3 * dh, scale=0.1),
                p + "mha.ff.weight.0": rand(heads, dh, D),
                p + "mha.ff.bias": rand(heads, D, scale=0.1),
                p + "mha.kv_norm.weight": torch.ones(dh),
                p + "mha.layer_norm.weight": torch.ones(D),
                p + "mha.layer_norm.bias": torch.zeros(D),
                p + "mlpblock.switch_gate.w_gate.weight": rand(EXPERTS, D, scale=1.0),
                p + "mlpblock.switch_gate.w_gate.bias": rand(EXPERTS, scale=0.5),
                p + "mlpblock.switch_gate.s_gate.weight": rand(L // D, L),
                p + "mlpblock.switch_gate.s_gate.bias": rand(L // D),
                p + "mlpblock.linear1.weight.0": rand(EXPERTS, D, HS),
                p + "mlpblock.linear1.bias.0": rand(EXPERTS, 1, HS, scale=0.1),
                p + "mlpblock.linear2.weight.0": rand(EXPERTS, HS, D),
                p + "mlpblock.linear2.bias": rand(EXPERTS, D, scale=0.1),
                p + "mlpblock.linear3.weight": rand(D, D),
                p + "mlpblock.linear3.bias": rand(D),
            }
        )
    return sd


# ---------------------------------------------------------------- the looped reference


def _rms(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt((x * x).mean() + 1e-6) * w


def _layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mean = x.mean()
    var = ((x - mean) ** 2).mean()
    return (x - mean) / torch.sqrt(var + 1e-5) * w + b


def _rotate(x: torch.Tensor, t: int, heads: int) -> torch.Tensor:
    """The released step before the gate and QKV: per head slice [rot(second half) | first half],
    pairs (2i, 2i+1) of the second half turned by t * 10000^(-2i / (Dh/2))."""
    out = []
    dh = D // heads
    half = dh // 2
    for h in range(heads):
        piece = x[h * dh : (h + 1) * dh]
        nope, pe = piece[:half], piece[half:]
        turned = []
        for i in range(half // 2):
            angle = t * 10000.0 ** (-2 * i / half)
            a, b = pe[2 * i], pe[2 * i + 1]
            turned += [
                a * math.cos(angle) - b * math.sin(angle),
                a * math.sin(angle) + b * math.cos(angle),
            ]
        out += turned + list(nope)
    return torch.stack(out)


def _best(scores: list[float], count: int) -> list[int]:
    """The `count` positions of highest score (earlier position first among equals), then in
    position order: the released top-k then sort."""
    order = sorted(range(len(scores)), key=lambda t: (-scores[t], t))
    return sorted(order[:count])


def _top(values: torch.Tensor, k: int) -> list[int]:
    return sorted(range(len(values)), key=lambda e: (-float(values[e].detach()), e))[:k]


class Diagnostics:
    """What the reference saw, so the test can check that the cases it means to cover occur."""

    def __init__(self) -> None:
        self.empty_rows = 0  # head rows whose slots hold no real key
        self.fillers = 0  # attention slots given to a token that did not choose the head
        self.batch_rank_changes = 0  # MLP rows the per-token ranking would select differently


def reference_logits(
    sd, tokens, lengths, diag: Diagnostics | None = None, heads=HEADS, attn_top_k=ATTN_TOP_K
):
    """Logits (B, C) and the hidden state after each block, [(B, L, D)], as released."""
    dh = D // heads
    diag = diag or Diagnostics()
    batch = len(tokens)
    mask = [[1.0 if t < lengths[b] else 0.0 for t in range(L)] for b in range(batch)]
    x = [
        [
            sd["model.embeddings.word_embeddings.weight"][tokens[b][t]]
            + sd["model.embeddings.position_embeddings.weight"][t]
            for t in range(L)
        ]
        for b in range(batch)
    ]
    after_blocks = []
    for i in range(DEPTH):
        p = f"model.transformer_{i}."
        # Attention: x + SMHA(rms(x)), padding routed like any token.
        h = [
            [_rotate(_rms(x[b][t], sd[p + "norm1.weight"]), t, heads) for t in range(L)]
            for b in range(batch)
        ]
        route = [[None] * L for _ in range(batch)]
        for b in range(batch):
            for t in range(L):
                s = torch.softmax(
                    sd[p + "mha.switch_gate.weight"] @ h[b][t] + sd[p + "mha.switch_gate.bias"], 0
                )
                chosen = _top(s, attn_top_k)
                kept = [float(s[e].detach()) if e in chosen else 0.0 for e in range(heads)]
                route[b][t] = [v / (sum(kept) + 1.0) for v in kept]
        slots = max(
            sum(route[b][t][e] > 0 for t in range(L)) for e in range(heads) for b in range(batch)
        )
        out = [[torch.zeros(D) for _ in range(L)] for _ in range(batch)]
        for e in range(heads):
            w_qkv, b_qkv = sd[p + "mha.W_qkv.weight.0"][e], sd[p + "mha.W_qkv.bias.0"][e, 0]
            w_o, b_o = sd[p + "mha.ff.weight.0"][e], sd[p + "mha.ff.bias"][e]
            for b in range(batch):
                picked = _best([route[b][t][e] for t in range(L)], slots)
                diag.fillers += sum(route[b][t][e] == 0 for t in picked)
                diag.empty_rows += all(mask[b][t] == 0 for t in picked)
                qkv = {t: h[b][t] @ w_qkv + b_qkv for t in picked}
                for t in picked:
                    q = qkv[t][:dh]
                    scores = torch.stack(
                        [
                            torch.dot(q, qkv[j][dh : 2 * dh]) / math.sqrt(dh)
                            - 1e6 * (1 - mask[b][j])
                            for j in picked
                        ]
                    )
                    weights = torch.softmax(scores, 0)
                    attended = sum(weights[n] * qkv[j][2 * dh :] for n, j in enumerate(picked))
                    out[b][t] = out[b][t] + attended @ w_o + b_o
        x = [[x[b][t] + out[b][t] for t in range(L)] for b in range(batch)]
        # MLP: x + U_MLP(rms(x)); each expert keeps L/2 tokens ranked by the batch-normalised gate.
        h = [[_rms(x[b][t], sd[p + "norm2.weight"]) for t in range(L)] for b in range(batch)]
        kept = [[None] * L for _ in range(batch)]
        for b in range(batch):
            for t in range(L):
                w, bias = (
                    sd[p + "mlpblock.switch_gate.w_gate.weight"],
                    sd[p + "mlpblock.switch_gate.w_gate.bias"],
                )
                s = torch.softmax(w @ h[b][t] + bias, 0)
                chosen = _top(s, TOP_K)
                kept[b][t] = [float(s[e].detach()) if e in chosen else 0.0 for e in range(EXPERTS)]
        out = [[torch.zeros(D) for _ in range(L)] for _ in range(batch)]
        for e in range(EXPERTS):
            w1, b1 = sd[p + "mlpblock.linear1.weight.0"][e], sd[p + "mlpblock.linear1.bias.0"][e, 0]
            w2, b2 = sd[p + "mlpblock.linear2.weight.0"][e], sd[p + "mlpblock.linear2.bias"][e]
            for b in range(batch):
                ranked = [
                    kept[b][t][e] / (sum(kept[o][t][e] for o in range(batch)) + 1.0) * batch
                    for t in range(L)
                ]
                picked = _best(ranked, L // 2)
                diag.batch_rank_changes += picked != _best(
                    [kept[b][t][e] for t in range(L)], L // 2
                )
                for t in picked:
                    out[b][t] = out[b][t] + F.gelu(h[b][t] @ w1 + b1) @ w2 + b2
        x = [[x[b][t] + out[b][t] for t in range(L)] for b in range(batch)]
        after_blocks.append(torch.stack([torch.stack(row) for row in x]))
    logits = []
    for b in range(batch):
        pooled = (
            sum(
                _layer_norm(x[b][t], sd["model.norm.weight"], sd["model.norm.bias"]) * mask[b][t]
                for t in range(L)
            )
            / L
        )
        hidden = torch.relu(
            sd["seq_classifer.mlpblock.0.weight"] @ pooled + sd["seq_classifer.mlpblock.0.bias"]
        )
        logits.append(
            sd["seq_classifer.mlpblock.2.weight"] @ hidden + sd["seq_classifer.mlpblock.2.bias"]
        )
    return torch.stack(logits), after_blocks


# ---------------------------------------------------------------- the tests


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, VOCAB, (len(LENGTHS), L), generator=g)
    lengths = torch.tensor(LENGTHS)
    tokens = tokens.masked_fill(torch.arange(L)[None, :] >= lengths[:, None], 0)
    return tokens, lengths


def _ours(
    sd: dict[str, torch.Tensor], cfg: ModelConfig = RELEASED, attn_top_k: int = ATTN_TOP_K
) -> torch.nn.Module:
    model = registries.MODELS.get("uoe_paper")(cfg, TASK, UoEFields(attn_top_k=attn_top_k))
    load_released_state_dict(model, sd)
    return model


def _ours_with_blocks(model, tokens, lengths):
    after = []
    hooks = [
        b.register_forward_hook(lambda m, a, out: after.append(out[0]))
        for b in model.encoder.blocks
    ]
    try:
        logits = model((tokens,), (lengths,)).logits
    finally:
        for hook in hooks:
            hook.remove()
    return logits, after


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize(
    "heads, attn_top_k", [(HEADS, ATTN_TOP_K), pytest.param(4, 2, marks=pytest.mark.slow)]
)
def test_uoe_paper_on_the_released_backbone_matches_the_looped_release(
    mode: str, heads: int, attn_top_k: int
) -> None:
    """(2, 1) is the released LRA layout; (4, 2) has two heads per token. (The attention's
    ranking s m / (sum s m + 1) decides nothing here: at the released max_load capacity every
    chosen token is kept and the fillers all score 0.)"""
    sd = released_state_dict(seed=0, heads=heads)
    tokens, lengths = _batch(seed=0)
    cfg = dataclasses.replace(RELEASED, heads=heads)
    model = _ours(sd, cfg, attn_top_k)
    model.train(mode == "train")
    diag = Diagnostics()
    with torch.no_grad():
        want_logits, want_blocks = reference_logits(
            sd, tokens.tolist(), lengths.tolist(), diag, heads, attn_top_k
        )
        got_logits, got_blocks = _ours_with_blocks(model, tokens, lengths)
    # The batch covers what the released code does differently from per-token routing.
    assert diag.fillers > 0 and diag.batch_rank_changes > 0
    if attn_top_k == 1:  # rows of padding alone occur in the released layout
        assert diag.empty_rows > 0
    for got, want in zip(got_blocks, want_blocks, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    torch.testing.assert_close(got_logits, want_logits, rtol=0, atol=1e-5)


def test_uoe_paper_gradients_match_the_looped_release() -> None:
    sd = {k: v.clone().requires_grad_(True) for k, v in released_state_dict(seed=1).items()}
    tokens, lengths = _batch(seed=1)
    weights = torch.randn(len(LENGTHS), CLASSES, generator=torch.Generator().manual_seed(2))
    want_logits, _ = reference_logits(sd, tokens.tolist(), lengths.tolist())
    (want_logits * weights).sum().backward()
    model = _ours({k: v.detach() for k, v in sd.items()}).train()
    (model((tokens,), (lengths,)).logits * weights).sum().backward()
    ours = dict(model.named_parameters())
    pairs = {
        "model.embeddings.word_embeddings.weight": "encoder.embed.tokens.weight",
        "model.transformer_0.norm1.weight": "encoder.blocks.0.mixer_norm.weight",
        "model.transformer_0.mha.W_qkv.weight.0": "encoder.blocks.0.mixer.qkv_weight",
        "model.transformer_0.mha.ff.bias": "encoder.blocks.0.mixer.out_bias",
        "model.transformer_1.mlpblock.linear1.weight.0": "encoder.blocks.1.ffn.up_weight",
        "model.transformer_1.mlpblock.linear2.bias": "encoder.blocks.1.ffn.down_bias",
        "seq_classifer.mlpblock.0.weight": "head.net.0.weight",
    }
    for theirs, our_name in pairs.items():
        torch.testing.assert_close(ours[our_name].grad, sd[theirs].grad, rtol=1e-4, atol=1e-5)
    # As released, the gates only choose indices: no gradient reaches them.
    assert sd["model.transformer_0.mha.switch_gate.weight"].grad is None
    assert ours["encoder.blocks.0.mixer.router.gate.weight"].grad is None


def test_load_released_state_dict_copies_every_parameter_and_counts_the_unused_ones() -> None:
    sd = released_state_dict(seed=3)
    model = _ours(sd)
    ours = dict(model.named_parameters())
    assert sum(p.numel() for p in ours.values()) == sum(v.numel() for v in sd.values())
    torch.testing.assert_close(
        ours["encoder.blocks.1.mixer.qkv_bias"], sd["model.transformer_1.mha.W_qkv.bias.0"][:, 0]
    )
    torch.testing.assert_close(
        ours["encoder.blocks.0.ffn.released_unused.linear3.weight"],
        sd["model.transformer_0.mlpblock.linear3.weight"],
    )
    # Active parameters leave out the unused ones (kv_norm Dh + layer_norm 2D + s_gate + linear3).
    total, active = parameter_counts(model)
    unused = DEPTH * (DH + 2 * D + (L // D) * (L + 1) + D * D + D)
    per_expert = DEPTH * (
        (D * 3 * DH + 3 * DH + DH * D + D) * (HEADS - ATTN_TOP_K)
        + (D * HS + HS + HS * D + D) * (EXPERTS - TOP_K)
    )
    assert total - active == unused + per_expert


def test_the_released_listops_config_counts_its_139776_unused_parameters() -> None:
    cfg = ModelConfig(
        dim=64, depth=2, heads=2, ffn_dim=128, norm="rms", rope=True, pool="sum_over_L"
    )
    task = ModelTask(num_classes=10, vocab_size=512, num_inputs=1, max_len=2048)
    model = registries.MODELS.get("uoe_paper")(cfg, task)
    unused = sum(p.numel() for n, p in model.named_parameters() if ".released_unused." in n)
    assert unused == 139_776  # 2 x (32 + 128 + 65,568 + 4,160), issue 13
    # The released totals: embeddings + 2 layers + final LayerNorm + head (checkpoint: 381,334).
    assert sum(p.numel() for p in model.parameters()) == 381_334


def test_load_released_state_dict_refuses_missing_unexpected_and_misshaped_keys() -> None:
    model = registries.MODELS.get("uoe_paper")(RELEASED, TASK)
    sd = released_state_dict(seed=4)
    broken = dict(sd)
    del broken["model.transformer_1.mha.ff.bias"]
    broken["model.cls_embed"] = torch.zeros(1, 1, D)
    broken["model.transformer_0.mlpblock.linear2.bias"] = torch.zeros(D)  # the shared form
    before = {n: p.clone() for n, p in model.named_parameters()}
    with pytest.raises(ValueError) as err:
        load_released_state_dict(model, broken)
    message = str(err.value)
    assert "missing keys: model.transformer_1.mha.ff.bias" in message
    assert "unexpected keys: model.cls_embed" in message
    assert "model.transformer_0.mlpblock.linear2.bias (16,) (expected (4, 16))" in message
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters()), "partly loaded"
    with pytest.raises(ValueError, match=r"unexpected keys: module\.model\.norm\.weight"):
        load_released_state_dict(
            model, {"module." + k if k == "model.norm.weight" else k: v for k, v in sd.items()}
        )
    # Not the released backbone, or not uoe_paper: refused before any key is read.
    with pytest.raises(TypeError, match=r"model\.norm=rms"):
        load_released_state_dict(
            registries.MODELS.get("uoe_paper")(ModelConfig(dim=D, heads=HEADS, ffn_dim=FFN), TASK),
            sd,
        )
    with pytest.raises(TypeError, match="build the model as uoe_paper"):
        load_released_state_dict(registries.MODELS.get("uoe")(RELEASED, TASK), sd)
