"""The causality probe (models/causality.py), first on toy models whose answer is known, then on
every registered model's causal form at random weights: a causal model must not leak, a model
without a causal form says so (`NoCausalForm`, listed with its reason by `pytest -rs`), and the
released UoE, which routes by expert choice over the whole segment, must be found leaking
(a strict expected failure: the entry goes when the model stops leaking)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.causality import ABS_TOLERANCE, REL_TOLERANCE, probe_causality
from models.config import ModelConfig, ModelTask
from models.errors import NoCausalForm
from models.layers.output import ModelOutput
from models.registry import build_model

VOCAB = 64
MAX_LEN = 32
TASK = ModelTask(num_classes=VOCAB, vocab_size=VOCAB, num_inputs=1, max_len=MAX_LEN, causal=True)
LENGTHS = torch.tensor([32, 32, 32, 19])

# Released behaviour kept on purpose (reference/uoe.md section 1.6); strict xfail.
LEAKS_BY_DESIGN = {
    "uoe_paper": "released UoE: MLP experts pick the top L/2 tokens of the segment (expert "
    "choice), attention capacity is the batch's max load with filler tokens",
}
# Models that have no causal form, each raising NoCausalForm; checked to raise.
NO_CAUSAL_FORM = ("linformer", "uoe", "uoe_patch", "uoe_sample")


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, VOCAB, (len(LENGTHS), MAX_LEN), generator=gen)  # (B, L)
    tokens = tokens.masked_fill(torch.arange(MAX_LEN)[None, :] >= LENGTHS[:, None], 0)
    return tokens, LENGTHS.clone()


class _Toy(nn.Module):
    """Embeds tokens and mixes them by a prefix mean (causal) or a whole-sequence mean plus
    `leak` times the next token (leaky); logits (B, L, V) by a fixed linear map."""

    def __init__(self, leak: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 8)
        self.out = nn.Linear(8, VOCAB)
        self.leak = leak

    def forward(self, inputs: tuple[torch.Tensor], lengths: tuple[torch.Tensor]) -> ModelOutput:
        x = self.embed(inputs[0])  # (B, L, D)
        counts = torch.arange(1, x.shape[1] + 1)[None, :, None]  # (1, L, 1)
        h = x.cumsum(1) / counts  # prefix mean (B, L, D)
        if self.leak:
            h = h + self.leak * torch.roll(x, -1, dims=1)  # position t sees t + 1
        return ModelOutput(self.out(h), x.new_zeros(()), ())


def test_probe_passes_a_causal_toy_and_reports_its_tolerance() -> None:
    torch.manual_seed(0)
    model = _Toy(leak=0.0)
    tokens, lengths = _batch()
    result = probe_causality(model, tokens, lengths, VOCAB, trials=2)
    assert not result.leaks
    assert result.max_abs_change <= result.tolerance
    assert result.fraction_changed == 0.0
    with torch.no_grad():
        scale = model((tokens,), (lengths,)).logits[:, :].abs()
    real = torch.arange(MAX_LEN)[None, :] < lengths[:, None]
    expected_tol = REL_TOLERANCE * float(scale[real].max()) + ABS_TOLERANCE
    assert result.tolerance == pytest.approx(expected_tol)
    # Cuts 0, 8, 16, 24, 30; checked rows = real positions <= cut over 4 sequences, 2 trials.
    assert result.cuts == (0, 8, 16, 24, 30)
    per_cut = [sum(min(cut + 1, int(n)) for n in lengths) for cut in result.cuts]
    assert result.positions_checked == 2 * sum(per_cut)
    assert set(result.to_record()) >= {"leaks", "max_abs_change", "fraction_changed", "tolerance"}


def test_probe_finds_a_one_token_look_ahead_and_measures_it() -> None:
    torch.manual_seed(0)
    model = _Toy(leak=0.5)
    tokens, lengths = _batch()
    result = probe_causality(model, tokens, lengths, VOCAB, cuts=(10,), trials=1)
    assert result.leaks
    # Only position 10 sees position 11 (every sequence is longer than 11): 4 of the 4 x 11
    # checked rows change.
    assert result.positions_checked == 44
    assert result.fraction_changed == pytest.approx(4 / 44)
    assert result.max_rel_change > 1e-2


def test_probe_restores_training_mode_and_leaves_the_global_rng() -> None:
    model = _Toy(leak=0.0).train()
    tokens, lengths = _batch()
    state = torch.get_rng_state()
    probe_causality(model, tokens, lengths, VOCAB, trials=1)
    assert model.training
    assert torch.equal(state, torch.get_rng_state())


def _build_causal(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, ModelConfig(), TASK)


@pytest.mark.model_contract(xfail=LEAKS_BY_DESIGN)
def test_causal_form_does_not_see_later_tokens(model_name: str) -> None:
    try:
        model = _build_causal(model_name)
    except NoCausalForm as exc:
        pytest.skip(str(exc))
    tokens, lengths = _batch()
    result = probe_causality(model, tokens, lengths, VOCAB, trials=2)
    assert not result.leaks, f"{model_name} leaks: {result.to_record()}"


@pytest.mark.parametrize("name", NO_CAUSAL_FORM)
def test_models_without_a_causal_form_say_why(name: str) -> None:
    with pytest.raises(NoCausalForm, match=name):
        _build_causal(name)


@pytest.mark.parametrize("name", sorted(LEAKS_BY_DESIGN))
def test_released_uoe_leak_is_large(name: str) -> None:
    """Not a rounding effect: the released routing moves earlier logits by a large fraction."""
    model = _build_causal(name)
    tokens, lengths = _batch()
    result = probe_causality(model, tokens, lengths, VOCAB, trials=2)
    assert result.leaks
    assert result.max_rel_change > 1e-2
    assert result.fraction_changed > 0.05


@pytest.mark.parametrize(
    ("fields", "cause"),
    [
        ({"capacity_rule": "factor"}, "capacity rule 'factor'"),
        ({"capacity_rule": "half"}, "capacity rule 'fraction'"),
        ({"patch_size": 4}, "patch-wise data selection"),
        ({"routing_level": "sample"}, "expert selection per sample"),
    ],
)
def test_uoe_causal_refuses_routing_that_reads_later_tokens(fields: dict, cause: str) -> None:
    """uoe_causal's causal form exists only for its own routing; a field that makes an expert
    choose its data is refused, naming the cause, while the classifier form still builds."""
    cfg = ModelConfig()
    with pytest.raises(NoCausalForm, match=f"uoe_causal has no causal form: .*{cause}"):
        build_model("uoe_causal", cfg, TASK, fields)
    classifier = ModelTask(num_classes=3, vocab_size=VOCAB, num_inputs=1, max_len=MAX_LEN)
    build_model("uoe_causal", cfg, classifier, fields)


def test_uoe_with_a_capacity_that_drops_nothing_has_a_causal_form() -> None:
    """The obstacle is the routing, not the name: uoe set to max_load is uoe_causal's routing."""
    torch.manual_seed(0)
    model = build_model("uoe", ModelConfig(), TASK, {"capacity_rule": "max_load"})
    tokens, lengths = _batch()
    assert not probe_causality(model, tokens, lengths, VOCAB, trials=1).leaks
