"""Shared test setup: the `slow`, `gpu` and `benchmark_kernels` markers; registries filled once;
the one way a test runs over the model registry.

A test that takes a `model_name` argument runs once per registered model and is marked
`model_contract`; `--model NAME` narrows it to that model, so `pytest -m model_contract --model
NAME` (what `bench check-model NAME` runs) is every registry test for one model. A test that
one model fails on purpose says so with `@pytest.mark.model_contract(xfail={name: why})`
(strict: the entry must go when the model changes).
"""

from __future__ import annotations

import pytest
import torch

from bench import registries
from models.registry import UnknownNameError

MODEL_CONTRACT = "model_contract"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")
    parser.addoption(
        "--run-benchmarks", action="store_true", help="also run tests marked benchmark_kernels"
    )
    parser.addoption(
        "--model",
        metavar="NAME",
        help="run the tests that take a registered model (marker model_contract) for this "
        "model only (bench check-model NAME: -m model_contract --model NAME)",
    )


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--model")
    if name is not None:
        registries.discover()
        try:
            registries.MODELS.entry(name)
        except UnknownNameError as exc:
            raise pytest.UsageError(f"--model: {exc}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `model_name` over the registry (or --model's one name), each case marked
    model_contract, the test's `model_contract(xfail=...)` models as strict expected failures."""
    if "model_name" not in metafunc.fixturenames:
        return
    registries.discover()
    registered = registries.MODELS.names()
    chosen = metafunc.config.getoption("--model")
    marker = metafunc.definition.get_closest_marker(MODEL_CONTRACT)
    xfail = dict(marker.kwargs.get("xfail", {})) if marker else {}
    stale = sorted(set(xfail) - set(registered))
    if stale:
        raise ValueError(
            f"{metafunc.definition.nodeid}: model_contract(xfail=...) names models that are not "
            f"registered: {', '.join(stale)}; remove them"
        )
    params = []
    for name in [chosen] if chosen else registered:
        marks = [pytest.mark.model_contract]
        if name in xfail:
            marks.append(pytest.mark.xfail(reason=xfail[name], strict=True))
        params.append(pytest.param(name, id=name, marks=marks))
    metafunc.parametrize("model_name", params)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run it")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; none is available here")
    for item in items:
        if item.get_closest_marker(MODEL_CONTRACT) and "model_name" not in item.fixturenames:
            raise pytest.UsageError(
                f"{item.nodeid} is marked {MODEL_CONTRACT} but takes no model_name: a test runs "
                "over the model registry by taking a model_name argument (tests/conftest.py)"
            )
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "benchmark_kernels" in item.keywords and not config.getoption("--run-benchmarks"):
            item.add_marker(pytest.mark.skip(reason="benchmark: pass --run-benchmarks to run it"))


@pytest.fixture(scope="session", autouse=True)
def discovered() -> None:
    registries.discover()
