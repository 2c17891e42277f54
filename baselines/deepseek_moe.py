"""DeepSeekMoE (Dai et al., 2401.06066): full attention + fine-grained routed experts beside
always-active shared experts.

Router: softmax over the routed experts, top-k (`model.active_experts`), gates the softmax
probabilities NOT renormalised over the k (as in the paper); dropless, padding never routed.
Expert-level balance loss alpha1 * sum_i f_i P_i (`model.expert_balance_weight`). Defaults follow
the UoE release's LRA baseline: 7 routed + 1 shared SwiGLU experts of width 16, 3 active
(models/deepseek/model.py says why).
"""

from __future__ import annotations

from models.config import ModelConfig, ModelTask
from models.deepseek.model import MOE_DEFAULTS, DeepSeekMoEFields, build_deepseek_moe
from models.layers.classifier import SequenceClassifier
from models.registry import MODELS


@MODELS.register(
    "deepseek_moe",
    "DeepSeekMoE: full attention + 7 routed (top-3, softmax) + 1 shared fine-grained experts",
    fields=DeepSeekMoEFields,
)
def build(
    cfg: ModelConfig, task: ModelTask, own: DeepSeekMoEFields = MOE_DEFAULTS
) -> SequenceClassifier:
    return build_deepseek_moe(cfg, task, own)
