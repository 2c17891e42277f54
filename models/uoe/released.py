"""Load a released UoE LRA checkpoint (github YujiaoYang-work/UoE, `long_range_modeling/`) into a
`uoe_paper` model built on the released backbone, so it can be evaluated in the harness.

The released `run_tasks.py` saves `{"model_state_dict": ModelForSC.state_dict()}`; pass that
inner dict. Released name (i = layer) -> ours, with the released shapes:

  model.embeddings.word_embeddings.weight      (V, D)        encoder.embed.tokens.weight
  model.embeddings.position_embeddings.weight  (L, D)        encoder.embed.positions.weight
  model.transformer_i.norm1.weight             (D,)          encoder.blocks.i.mixer_norm.weight
  model.transformer_i.norm2.weight             (D,)          encoder.blocks.i.ffn_norm.weight
  ...mha.switch_gate.{weight, bias}            (E, D), (E,)  ...mixer.router.gate.*
  ...mha.W_qkv.weight.0                        (E, D, 3 Dh)  ...mixer.qkv_weight ([q|k|v] per head)
  ...mha.W_qkv.bias.0                          (E, 1, 3 Dh)  ...mixer.qkv_bias ([:, 0])
  ...mha.ff.weight.0                           (E, Dh, D)    ...mixer.out_weight
  ...mha.ff.bias                               (E, D)        ...mixer.out_bias
  ...mha.kv_norm.weight, mha.layer_norm.*      unused        ...mixer.released_unused.*
  ...mlpblock.switch_gate.w_gate.*             (E, D), (E,)  ...ffn.router.gate.*
  ...mlpblock.switch_gate.s_gate.*             unused        ...ffn.released_unused.s_gate.*
  ...mlpblock.linear1.weight.0                 (E, D, Hs)    ...ffn.up_weight
  ...mlpblock.linear1.bias.0                   (E, 1, Hs)    ...ffn.up_bias ([:, 0])
  ...mlpblock.linear2.weight.0                 (E, Hs, D)    ...ffn.down_weight
  ...mlpblock.linear2.bias                     (E, D)        ...ffn.down_bias
  ...mlpblock.linear3.*                        unused        ...ffn.released_unused.linear3.*
  model.norm.{weight, bias}                    (D,)          encoder.norm.*
  seq_classifer.mlpblock.{0,2}.{weight, bias}                head.net.{0,2}.*

A state dict with a missing or an unexpected key, or a shape that differs, is refused, naming
them all (a `module.` prefix from DataParallel counts as unexpected: strip it first).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from models.uoe.smha import SelectiveAttention
from models.uoe.uome import UnionMLP

_SQUEEZED = ("mha.W_qkv.bias.0", "mlpblock.linear1.bias.0")  # (E, 1, n) -> (E, n)


def released_name_map(model: nn.Module) -> dict[str, str]:
    """{released name: our parameter name} for a uoe_paper model on the released backbone."""
    blocks = model.encoder.blocks
    for i, block in enumerate(blocks):
        if not (
            isinstance(block.mixer, SelectiveAttention)
            and block.mixer.released
            and isinstance(block.ffn, UnionMLP)
            and block.ffn.released
        ):
            raise TypeError(f"block {i} is not a released UoE block; build the model as uoe_paper")
        if isinstance(block.mixer_norm, nn.LayerNorm) or block.rotary is None:
            raise TypeError(
                "the released checkpoint needs the released backbone: build uoe_paper with "
                "--set model.norm=rms --set model.rope=true --set model.pool=sum_over_L"
            )
    names = {
        "model.embeddings.word_embeddings.weight": "encoder.embed.tokens.weight",
        "model.embeddings.position_embeddings.weight": "encoder.embed.positions.weight",
        "model.norm.weight": "encoder.norm.weight",
        "model.norm.bias": "encoder.norm.bias",
    }
    for layer in (0, 2):
        for kind in ("weight", "bias"):
            names[f"seq_classifer.mlpblock.{layer}.{kind}"] = f"head.net.{layer}.{kind}"
    per_block = {
        "norm1.weight": "mixer_norm.weight",
        "norm2.weight": "ffn_norm.weight",
        "mha.switch_gate.weight": "mixer.router.gate.weight",
        "mha.switch_gate.bias": "mixer.router.gate.bias",
        "mha.W_qkv.weight.0": "mixer.qkv_weight",
        "mha.W_qkv.bias.0": "mixer.qkv_bias",
        "mha.ff.weight.0": "mixer.out_weight",
        "mha.ff.bias": "mixer.out_bias",
        "mha.kv_norm.weight": "mixer.released_unused.kv_norm.weight",
        "mha.layer_norm.weight": "mixer.released_unused.layer_norm.weight",
        "mha.layer_norm.bias": "mixer.released_unused.layer_norm.bias",
        "mlpblock.switch_gate.w_gate.weight": "ffn.router.gate.weight",
        "mlpblock.switch_gate.w_gate.bias": "ffn.router.gate.bias",
        "mlpblock.switch_gate.s_gate.weight": "ffn.released_unused.s_gate.weight",
        "mlpblock.switch_gate.s_gate.bias": "ffn.released_unused.s_gate.bias",
        "mlpblock.linear1.weight.0": "ffn.up_weight",
        "mlpblock.linear1.bias.0": "ffn.up_bias",
        "mlpblock.linear2.weight.0": "ffn.down_weight",
        "mlpblock.linear2.bias": "ffn.down_bias",
        "mlpblock.linear3.weight": "ffn.released_unused.linear3.weight",
        "mlpblock.linear3.bias": "ffn.released_unused.linear3.bias",
    }
    for i in range(len(blocks)):
        for theirs, ours in per_block.items():
            names[f"model.transformer_{i}.{theirs}"] = f"encoder.blocks.{i}.{ours}"
    return names


def load_released_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Copy a released state dict into `model` (module doc), in place; refuse a dict whose keys
    or shapes do not match, naming every offending key."""
    names = released_name_map(model)
    ours = dict(model.named_parameters())
    unmapped = sorted(set(ours) - set(names.values()))
    if unmapped:
        raise TypeError(f"the model has parameters the release has not: {', '.join(unmapped)}")
    missing = sorted(set(names) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(names))
    converted = {}
    wrong_shape = []
    for theirs, our_name in names.items():
        if theirs not in state_dict:
            continue
        value = state_dict[theirs]
        if theirs.endswith(_SQUEEZED) and value.dim() == 3 and value.shape[1] == 1:
            value = value[:, 0]
        target = ours[our_name]
        if value.shape != target.shape:
            wrong_shape.append(f"{theirs} {tuple(value.shape)} (expected {tuple(target.shape)})")
        converted[our_name] = value
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if wrong_shape:
        problems.append(f"shapes differ: {', '.join(wrong_shape)}")
    if problems:
        raise ValueError(
            "not a released UoE LRA state dict for this model (build uoe_paper on the released "
            "backbone with the checkpoint's dim, depth, experts, vocabulary and max_len): "
            + "; ".join(problems)
        )
    with torch.no_grad():
        for our_name, value in converted.items():
            ours[our_name].copy_(value)
