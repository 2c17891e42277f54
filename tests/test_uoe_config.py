"""The paper's hierarchical routing from the command line: `model.routing_level`,
`model.capacity_rule` and `model.patch_size` (the UoE models' own fields, `UoEFields`) reach both
UoE parts of every UoE model, the per-sample routing keeps whole samples, and `uoe_patch` /
`uoe_sample` are registered and listed."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench import registries
from bench.cli import main
from bench.config import parse_override
from models.config import ModelConfig, ModelTask
from models.registry import build_model
from models.uoe.model import UOE_PATCH_TOKENS, UoEFields
from models.uoe.routing import Capacity
from suites.config import split_model_own

registries.discover()
CFG = ModelConfig(dim=32, depth=2, heads=2, ffn_dim=64, experts=4, top_k=2)
OWN = UoEFields(attn_top_k=1)
TASK = ModelTask(num_classes=3, vocab_size=13, num_inputs=1, max_len=64)


def _build(name: str, own: UoEFields = OWN) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, CFG, TASK, dataclasses.asdict(own)).eval()


def _routings(model: torch.nn.Module) -> list:
    return [part.router.cfg for b in model.encoder.blocks for part in (b.mixer, b.ffn)]


def _dropped(model: torch.nn.Module) -> list[float]:
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 13, (4, 64), generator=g)
    lengths = torch.tensor([64, 50, 31, 9])
    with torch.no_grad():
        out = model((tokens,), (lengths,))
    return [float(s["dropped_fraction"]) for layer in out.layer_stats for s in layer.values()]


def test_set_routing_level_and_capacity_rule_reach_every_part() -> None:
    overrides = [
        parse_override(t, ["listops"])
        for t in ("model.routing_level=sample", "model.capacity_rule=half", "model.patch_size=4")
    ]
    shared, own = split_model_own({o.key: o.value for o in overrides})
    assert not shared
    for name in ("uoe", "uoe_paper"):
        for routing in _routings(_build(name, UoEFields(**own))):
            assert routing.level == "sample" and routing.patch_size == 4
            assert routing.capacity == Capacity("fraction", 0.5)


@pytest.mark.parametrize(
    "rule, want", [("factor", Capacity("factor", 1.25)), ("max_load", Capacity("max_load"))]
)
def test_capacity_rules_by_name(rule: str, want: Capacity) -> None:
    own = dataclasses.replace(OWN, capacity_rule=rule)
    for name in ("uoe", "uoe_paper", "uoe_patch"):
        assert all(r.capacity == want for r in _routings(_build(name, own)))


def test_default_capacities_of_each_model() -> None:
    paper = _routings(_build("uoe_paper"))
    assert [r.capacity for r in paper[:2]] == [Capacity("max_load"), Capacity("fraction", 0.5)]
    assert all(r.capacity == Capacity("factor", 1.25) for r in _routings(_build("uoe")))
    # Per sample, a chosen expert takes the whole sample (as in the released per-sample code).
    assert all(r.capacity == Capacity("max_load") for r in _routings(_build("uoe_sample")))


def test_per_sample_routing_keeps_every_token_of_a_sample() -> None:
    assert _dropped(_build("uoe_sample")) == [0.0] * 4
    assert _dropped(_build("uoe", dataclasses.replace(OWN, routing_level="sample"))) == [0.0] * 4
    # The factor rule at 1.25 keeps ceil(1.25 * 2 n / 4) of the n tokens: 37.5 % of them drop.
    dropped = _dropped(_build("uoe_sample", dataclasses.replace(OWN, capacity_rule="factor")))
    assert all(0.3 < d < 0.4 for d in dropped[1::2])  # the MLP parts (top-2 of 4)


def test_registered_patch_and_sample_models() -> None:
    patch = _routings(_build("uoe_patch"))
    assert all(r.patch_size == UOE_PATCH_TOKENS and r.level == "token" for r in patch)
    assert all(
        r.patch_size == 4
        for r in _routings(_build("uoe_patch", dataclasses.replace(OWN, patch_size=4)))
    )
    assert all(r.level == "sample" and r.patch_size == 1 for r in _routings(_build("uoe_sample")))
    assert all(r.weighted and r.mask_padding for r in patch + _routings(_build("uoe_sample")))
    # Token level with patch_size 0 (the default) is token-level data selection.
    assert all(r.patch_size == 1 and r.level == "token" for r in _routings(_build("uoe")))


def test_bench_list_describes_the_uoe_models(capsys) -> None:
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    for name, words in {
        "uoe_patch": "patch-wise data selection",
        "uoe_sample": "per-sample expert selection",
        "uoe_paper": "as released",
        "uoe_causal": "nothing dropped",
    }.items():
        line = next(line for line in out.splitlines() if line.split()[:1] == [name])
        assert words in line, line
