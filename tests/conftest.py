"""Shared test setup: the `slow`, `gpu` and `benchmark_kernels` markers; registries filled once."""

from __future__ import annotations

import pytest
import torch

from bench import catalog


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")
    parser.addoption(
        "--run-benchmarks", action="store_true", help="also run tests marked benchmark_kernels"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run it")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; none is available here")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "benchmark_kernels" in item.keywords and not config.getoption("--run-benchmarks"):
            item.add_marker(pytest.mark.skip(reason="benchmark: pass --run-benchmarks to run it"))


@pytest.fixture(scope="session", autouse=True)
def discovered() -> None:
    catalog.discover()
