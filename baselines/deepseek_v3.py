"""DeepSeek-V3 (2412.19437): Multi-head Latent Attention + the DeepSeekMoE FFN with V3's router.

Router: sigmoid affinities, top-k on affinity + bias, gates the unbiased affinities renormalised
over the selected experts times `model.routed_scaling`; optional group-limited routing
(`model.expert_groups`, `model.groups_per_token`). Balance: the auxiliary-loss-free bias update
(`model.bias_update_speed`, in training mode, after each forward's routing) plus the small
sequence-wise balance loss (`model.seq_balance_weight`). Defaults follow the UoE release's LRA
baseline (7 routed + 1 shared experts of width 16, 3 active; MLA ranks D / 2);
models/deepseek/model.py and models/deepseek/mla.py give the details.
"""

from __future__ import annotations

from models.config import ModelConfig, ModelTask
from models.deepseek.model import V3_DEFAULTS, DeepSeekV3Fields, build_deepseek_v3
from models.layers.classifier import SequenceClassifier
from models.registry import MODELS


@MODELS.register(
    "deepseek_v3",
    "DeepSeek-V3: MLA + 7 routed (top-3, sigmoid, bias balancing) + 1 shared experts",
    fields=DeepSeekV3Fields,
)
def build(
    cfg: ModelConfig, task: ModelTask, own: DeepSeekV3Fields = V3_DEFAULTS
) -> SequenceClassifier:
    return build_deepseek_v3(cfg, task, own)
