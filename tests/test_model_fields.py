"""Models' own fields (`models.registry`, `suites.model_fields`): a model file declares them, a
`--set model.FIELD` is typed by the declaring class and reaches, changes and is recorded for
only the models that declare it; unknown and pointless settings are refused naming the fields.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest
import torch

from baselines.linformer import LinformerFields
from baselines.performer import PerformerFields
from baselines.switch import SwitchFields
from bench import registries, runner
from bench.cli import main
from bench.config import parse_override
from bench.manifest import read_manifest
from bench.records import read_records
from bench.runner.dry_run import config_line
from bench.runner.plan import RunPlan, resolve
from models.config import ModelConfig, ModelTask
from models.layers.linformer import LinformerAttention
from models.registry import MODELS, Registry, build_model, own_fields
from models.uoe.model import UoEFields
from suites.config import ConfigError
from suites.model_fields import check_own

TASKS = ("majority", "first")
TASK = ModelTask(num_classes=3, vocab_size=13, num_inputs=1, max_len=32)


def _plan(models: tuple[str, ...], *overrides: str, sweep: tuple[str, ...] = ()) -> RunPlan:
    return RunPlan(
        suite="smoke",
        scale="tiny",
        models=models,
        tasks=("majority",),
        seeds=(0,),
        overrides=overrides,
        sweep=sweep,
    )


def test_an_own_field_is_typed_by_the_declaring_class() -> None:
    override = parse_override("model.proj_len=64", TASKS)
    assert (override.task, override.key, override.value) == (None, "model.proj_len", 64)
    assert parse_override("first.model.z_loss_weight=0", TASKS).value == 0.0
    assert parse_override("model.routing_level=sample", TASKS).value == "sample"
    with pytest.raises(ConfigError, match=r"model\.proj_len=x: expected a value of type int"):
        parse_override("model.proj_len=x", TASKS)
    # A scale's own settings are checked when a plan resolves (the registry is filled by then).
    with pytest.raises(ConfigError, match=r"model\.proj_len='32': expected a value of type int"):
        check_own({"proj_len": "32"}, ["linformer"], MODELS, ModelConfig())


def test_an_unknown_model_field_lists_the_shared_fields_and_each_models_own() -> None:
    with pytest.raises(ConfigError) as err:
        parse_override("model.projlen=64", TASKS)
    message = str(err.value)
    assert message.startswith(
        "unknown field model.projlen; model fields: attn_dropout, balance_loss_weight, "
        "capacity_factor, depth, dim, dropout, experts, ffn_dim, heads, norm, pool, rope, top_k; "
        "fields of some models only: "
    )
    # Models sharing the same own fields are listed together (every registered model with a
    # fields class is there; these are a few).
    for group in (
        "linformer: proj_len; ",
        "performer, performer_relu: random_features; ",
        "uoe, uoe_causal, uoe_paper, uoe_patch, uoe_sample: attn_top_k, capacity_rule, "
        "patch_size, routing_level",
        "deepseek_moe: active_experts, expert_balance_weight, expert_width, routed_experts, "
        "shared_experts; ",
        "skywork_moe: aux_sensitivity, aux_smoothing, gate_scale; ",
        "xmoe: granularity, min_capacity, threshold",
        "switch: capacity_group, z_loss_weight; ",
        "moa: head_experts, heads_per_token, z_loss_weight; ",
        "switchhead: experts_active, experts_per_head; ",
    ):
        assert group in message
    with pytest.raises(ConfigError, match=r"unknown field model\.projlen"):
        check_own({"projlen": 3}, ["linformer"], MODELS, ModelConfig())


def test_an_own_field_no_planned_model_declares_is_refused_naming_who_does() -> None:
    with pytest.raises(ConfigError) as err:
        resolve(_plan(("full_attention", "switch"), "model.proj_len=8"))
    assert str(err.value) == (
        "--set model.proj_len=8: model.proj_len is a field of linformer only, and the plan has "
        "none of them (models: full_attention, switch); add one to --models or drop the setting"
    )
    with pytest.raises(ConfigError, match=r"--sweep model\.random_features=4,8: .* performer, "):
        resolve(_plan(("linformer",), sweep=("model.random_features=4,8",)))
    # The scale's own settings reach whichever planned model declares them, and no other.
    assert resolve(_plan(("full_attention",))).own("majority")["proj_len"] == 16


def test_set_changes_linformers_config_and_module_and_leaves_full_attention_alone() -> None:
    plain = resolve(_plan(("full_attention", "linformer")))
    changed = resolve(_plan(("full_attention", "linformer"), "model.proj_len=8"))
    assert plain.cell_config("majority", "", "linformer")["model"]["proj_len"] == 16  # the scale's
    assert changed.cell_config("majority", "", "linformer")["model"]["proj_len"] == 8
    dense = changed.cell_config("majority", "", "full_attention")
    assert dense == plain.cell_config("majority", "", "full_attention")
    assert "proj_len" not in dense["model"] and changed.configs == plain.configs

    cfg = changed.config("majority")
    task = changed.tasks["majority"].model_task(cfg.data.max_len)
    built = {}
    for resolved in (plain, changed):
        for name in ("full_attention", "linformer"):
            torch.manual_seed(0)
            built[id(resolved), name] = build_model(name, cfg.model, task, resolved.own("majority"))
    mixer = built[id(changed), "linformer"].encoder.blocks[0].mixer
    assert isinstance(mixer, LinformerAttention) and mixer.proj_len == 8
    assert mixer.key_proj.shape == (8, cfg.data.max_len)
    assert built[id(plain), "linformer"].encoder.blocks[0].mixer.proj_len == 16
    before = built[id(plain), "full_attention"].state_dict()
    after = built[id(changed), "full_attention"].state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_cell_config_is_the_whole_json_ready_config_of_one_model() -> None:
    resolved = resolve(_plan(("uoe_patch", "mixtral"), "model.patch_size=4", "model.dim=48"))
    uoe = resolved.cell_config("majority", "", "uoe_patch")
    assert set(uoe) == {"model", "train", "data", "measure"}
    assert uoe["model"]["dim"] == 48 and uoe["model"]["patch_size"] == 4
    assert {k: uoe["model"][k] for k in ("attn_top_k", "routing_level", "capacity_rule")} == {
        "attn_top_k": 1,
        "routing_level": "token",
        "capacity_rule": "default",
    }
    assert uoe["train"] == dataclasses.asdict(resolved.config("majority").train)
    assert json.loads(json.dumps(uoe)) == uoe
    mixtral = resolved.cell_config("majority", "", "mixtral")["model"]
    assert mixtral == dataclasses.asdict(resolved.config("majority").model)


def test_scale_presets_keep_their_own_settings() -> None:
    smoke = resolve(_plan(("linformer", "performer", "performer_relu")))
    assert smoke.model_fields("majority", "", "linformer") == {"proj_len": 16}
    assert smoke.model_fields("majority", "", "performer_relu") == {"random_features": 32}
    lra = resolve(RunPlan("lra", "tiny", ("linformer", "performer"), ("listops", "image"), (0,)))
    assert lra.model_fields("image", "", "linformer") == {"proj_len": 32}
    assert lra.model_fields("listops", "", "performer") == {"random_features": 64}
    assert lra.model_fields("listops", "", "full_attention") == {}


def test_the_manifest_records_own_fields_only_for_the_declaring_models(tmp_path) -> None:
    plan = dataclasses.replace(
        _plan(("full_attention", "linformer", "switch"), "model.proj_len=8"),
        sweep=("model.z_loss_weight=0,0.5",),
    )
    resolved = resolve(plan)
    runner.start(resolved, tmp_path / "r", ["bench", "run"])
    manifest = read_manifest(tmp_path / "r")
    assert manifest.model_fields == {
        "majority": {
            "linformer": {"proj_len": 8},
            "switch": {"capacity_group": "sequence", "z_loss_weight": 0.001},
        }
    }
    shared = manifest.configs["majority"]["model"]
    assert not {"proj_len", "z_loss_weight", "random_features", "attn_top_k"} & set(shared)
    # a sweep point's own fields are in the config each of its records carries
    point = "z_loss_weight=0.5"
    assert resolved.cell_config("majority", point, "switch")["model"]["z_loss_weight"] == 0.5
    assert resolved.cell_config("majority", point, "linformer")["model"]["proj_len"] == 8
    assert "proj_len" not in resolved.cell_config("majority", point, "switch")["model"]


def test_a_run_builds_each_cell_with_its_own_fields(tmp_path, capsys) -> None:
    argv = ["run", "--suite", "smoke", "--tasks", "majority", "--models", "linformer"]
    argv += ["--set", "model.proj_len=4", "--set", "train.steps=2", "--set", "train.eval_every=2"]
    argv += ["--set", "data.n_train=32", "--set", "data.n_dev=8", "--set", "data.n_test=8"]
    argv += ["--set", "measure.min_count=1", "--set", "measure.min_time_s=0", "--no-progress"]
    argv += ["--out", str(tmp_path), "--run-id", "r", "--cache-dir", str(tmp_path)]
    assert main(argv) == 0
    (record,) = read_records(tmp_path / "r")
    cfg = resolve(_plan(("linformer",))).config("majority")
    task = registries.TASKS.get("smoke/majority").model_task(cfg.data.max_len)

    def params(proj_len: int) -> int:
        model = build_model("linformer", cfg.model, task, {"proj_len": proj_len})
        return sum(p.numel() for p in model.parameters())

    assert record.params_total == params(4) != params(16)  # 16: the scale's own setting
    assert record.config["model"]["proj_len"] == 4, "the record says what it measured"


def test_fields_classes_check_their_ranges() -> None:
    with pytest.raises(ValueError) as err:
        LinformerFields(proj_len=0)
    assert str(err.value) == (
        "model.proj_len=0 is out of range: it must be an integer >= 1 "
        "(set it with --set model.proj_len=VALUE)"
    )
    with pytest.raises(ValueError, match=r"model\.random_features=-1 is out of range"):
        PerformerFields(random_features=-1)
    with pytest.raises(ValueError, match=r"model\.z_loss_weight=nan is out of range: .*finite"):
        SwitchFields(z_loss_weight=float("nan"))
    with pytest.raises(ValueError, match=r"model\.patch_size=-1 is out of range"):
        UoEFields(patch_size=-1)
    # At plan resolution, before any cell: the task is named; UoE's bound on the heads too.
    with pytest.raises(ValueError, match=r"^majority: model\.proj_len=0 is out of range"):
        resolve(_plan(("linformer",), "model.proj_len=0"))
    with pytest.raises(ValueError, match=r"model\.attn_top_k=3 must be in \[1, model\.heads=2\]"):
        resolve(_plan(("uoe",), "model.attn_top_k=3"))


def test_builders_still_take_shape_and_task_alone() -> None:
    cfg = ModelConfig(dim=16, depth=1, heads=2, ffn_dim=32)
    model = MODELS.get("linformer")(cfg, TASK)  # the class's default: 256, capped at max_len
    assert model.encoder.blocks[0].mixer.proj_len == TASK.max_len
    assert own_fields("linformer", {"proj_len": 4, "random_features": 9}) == LinformerFields(4)
    assert own_fields("full_attention", {"proj_len": 4}) is None


def test_the_dry_run_line_shows_each_models_own_fields() -> None:
    resolved = resolve(_plan(("full_attention", "linformer", "performer", "performer_relu")))
    line = config_line(resolved, "majority")
    assert line.endswith(
        "; linformer: model.proj_len=16; performer, performer_relu: model.random_features=32"
    )
    assert "model.dim=32 " in line and "full_attention" not in line


def test_registering_a_fields_class_checks_it() -> None:
    @dataclass(frozen=True)
    class Clash:
        dim: int = 3

    @dataclass
    class Mutable:
        width: int = 3

    @dataclass(frozen=True)
    class NoDefault:
        width: int

    @dataclass(frozen=True)
    class Width:
        width: int = 3

    @dataclass(frozen=True)
    class FloatWidth:
        width: float = 3.0

    registry: Registry[object] = Registry("model")
    with pytest.raises(ValueError, match=r"Clash\.dim is a shared ModelConfig field"):
        registry.add("a", object(), "a", fields=Clash)
    with pytest.raises(TypeError, match="must be a frozen dataclass"):
        registry.add("a", object(), "a", fields=Mutable)
    with pytest.raises(ValueError, match=r"NoDefault\.width needs a default"):
        registry.add("a", object(), "a", fields=NoDefault)
    registry.add("a", object(), "a", fields=Width)
    with pytest.raises(TypeError, match=r"FloatWidth\.width is float, but model 'a' declares it"):
        registry.add("b", object(), "b", fields=FloatWidth)
    assert registry.entry("a").fields is Width and "b" not in registry
    assert registries.MODELS.entry("uoe_sample").fields is UoEFields
