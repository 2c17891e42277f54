from __future__ import annotations

import pytest

from bench import registries
from bench.cli import main
from models.registry import DuplicateNameError, Registry, UnknownNameError


def test_registering_a_name_twice_raises() -> None:
    registry: Registry[int] = Registry("widget")
    registry.add("alpha", 1, "first")
    with pytest.raises(DuplicateNameError, match="alpha"):
        registry.add("alpha", 2, "again")
    assert registry.get("alpha") == 1


def test_unknown_name_lists_the_nearest_names() -> None:
    registry: Registry[int] = Registry("widget")
    for i, name in enumerate(["full_attention", "linformer", "performer"]):
        registry.add(name, i, f"model {i}")
    with pytest.raises(UnknownNameError) as info:
        registry.get("full_atention")
    assert info.value.suggestions[0] == "full_attention"
    assert "Did you mean: full_attention" in str(info.value)


def test_decorator_registers_and_lists_sorted() -> None:
    registry: Registry[object] = Registry("thing")

    @registry.register("zeta", "last")
    def zeta() -> None: ...

    registry.add("beta", 0, "first")
    assert registry.names() == ["beta", "zeta"]
    assert registry.get("zeta") is zeta
    assert [e.description for e in registry.entries()] == ["first", "last"]


def test_discovery_registers_the_lra_suite_and_dense_model() -> None:
    assert "full_attention" in registries.MODELS
    suite = registries.SUITES.get("lra")
    assert suite.tasks == ("listops", "text", "retrieval", "image", "pathfinder")
    assert {"tiny", "small", "paper"} <= set(suite.scales)
    for task in suite.tasks:
        assert f"lra/{task}" in registries.TASKS


def test_cli_unknown_model_fails_with_a_suggestion(tmp_path, capsys) -> None:
    code = main(["run", "--suite", "lra", "--models", "full_atention", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown model 'full_atention'" in err and "Did you mean: full_attention" in err
    assert not any(tmp_path.iterdir()), "a rejected run must not create a run directory"


def test_cli_unknown_suite_fails_with_a_suggestion(capsys) -> None:
    assert main(["run", "--suite", "lrra"]) == 2
    assert "Did you mean: lra" in capsys.readouterr().err


def test_cli_list_prints_descriptions(capsys) -> None:
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "full_attention" in out and "dense transformer" in out
