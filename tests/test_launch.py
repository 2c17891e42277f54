"""Choosing a launcher: the in-process default refuses Ray options instead of ignoring them,
`--launcher ray` without ray installed says which extra to install, and the runner takes a
`LaunchOptions`, never the command line's argparse Namespace."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.runner.launch_options import LaunchOptions
from bench.runner.ray_options import RayOptions, import_ray

RUN = ["run", "--suite", "smoke", "--models", "switch", "--tasks", "majority", "--no-progress"]


@pytest.mark.parametrize(
    "flags",
    [["--ray-address", "10.0.0.1:6379"], ["--gpus-per-cell", "1"], ["--share-device"]],
)
def test_ray_options_without_the_ray_launcher_are_refused(tmp_path, capsys, flags) -> None:
    assert main([*RUN, "--out", str(tmp_path), *flags]) == 2
    assert "need --launcher ray" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before the run directory exists


def test_the_ray_launcher_without_ray_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ValueError, match=r"pip install -e '\.\[ray\]'"):
        import_ray(local=False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(max_retries=-1), "--max-retries"),
        (dict(cpus_per_cell=0), "--cpus-per-cell must be > 0"),
        (dict(gpus_per_cell=1), "--gpus-per-cell needs --device cuda"),
    ],
)
def test_bad_ray_options_are_refused(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        RayOptions(**options)


def test_only_a_shared_device_is_flagged_shared() -> None:
    assert not RayOptions().device_shared
    assert RayOptions().exclusive_cpu_nodes
    assert RayOptions(share_device=True).device_shared
    assert not RayOptions(device="cuda").device_shared  # one whole GPU per cell
    assert RayOptions(device="cuda", gpus_per_cell=0.5).device_shared


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(cpus_per_cell=2.0), "^--cpus-per-cell need --launcher ray$"),
        (dict(ray_address="a:1", share_device=True), "^--ray-address, --share-device need "),
        (dict(launcher="slurm"), "--launcher 'slurm': use one of in_process, ray"),
    ],
)
def test_launch_options_refuse_what_their_launcher_would_ignore(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        LaunchOptions(**options)
    LaunchOptions(**{**options, "launcher": "ray"})  # the Ray launcher takes them


def test_no_runner_module_reads_the_command_line() -> None:
    runner = Path(__file__).resolve().parent.parent / "bench" / "runner"
    readers = [
        path.name
        for path in sorted(runner.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and "argparse" in [getattr(node, "module", None), *(a.name for a in node.names)]
    ]
    assert not readers, f"argparse in bench/runner: {readers}; take LaunchOptions instead"


def test_workers_belong_to_the_in_process_launcher(tmp_path, capsys) -> None:
    with pytest.raises(ValueError, match="--workers is the in-process launcher's"):
        LaunchOptions(launcher="ray", workers=2)
    with pytest.raises(ValueError, match="--workers 0: give 1 or more"):
        LaunchOptions(workers=0)
    assert main([*RUN, "--out", str(tmp_path), "--workers", "0"]) == 2
    assert "--workers 0: give 1 or more" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before the run directory exists
