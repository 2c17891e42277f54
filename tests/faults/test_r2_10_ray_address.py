"""Review 2, item 10: `--ray-address` where nothing listens. Before, `ray.init` waited for the
cluster with no end (no exit after 590 s) and ignored Ctrl-C. Now the address is probed with a
deadline (`BENCH_RAY_CONNECT_TIMEOUT_S`, small here) and the stop handlers are installed before
connecting: a clear error, exit 2, and SIGINT while waiting exits 130."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from importlib.util import find_spec

import pytest
from fault_helpers import TINY, bench_process, run_args

# Not imported here: ray reads its loopback switch at import (bench.runner.ray_options), and an
# import from this process would bind a later test's local instance to the routable address.
pytestmark = pytest.mark.skipif(find_spec("ray") is None, reason="ray is not installed")


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound for a moment, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path, deadline_s: float) -> tuple[subprocess.Popen, str]:
    address = f"127.0.0.1:{_closed_port()}"
    argv = [*run_args(tmp_path), *TINY, "--tasks", "majority"]
    argv += ["--launcher", "ray", "--ray-address", address]
    os.environ["BENCH_RAY_CONNECT_TIMEOUT_S"] = str(deadline_s)
    try:
        return bench_process(argv), address
    finally:
        del os.environ["BENCH_RAY_CONNECT_TIMEOUT_S"]


def test_nothing_listening_is_an_error_within_the_deadline(tmp_path) -> None:
    proc, address = _start(tmp_path, deadline_s=1.0)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("bench run still waiting for the Ray cluster after 60 s") from None
    assert proc.returncode == 2, err
    assert f"--ray-address {address}: no Ray cluster answered within 1 s" in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs" / "r").exists()  # nothing was started


def test_ctrl_c_while_connecting_stops_the_run(tmp_path) -> None:
    proc, address = _start(tmp_path, deadline_s=600.0)
    lines: list[str] = []
    waiting = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "waiting for the Ray cluster" in line:
                waiting.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert waiting.wait(60), "no 'waiting for the Ray cluster' line: " + "".join(lines)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    err = "".join(lines)
    assert proc.returncode == 130, err
    assert f"SIGINT while connecting to the Ray cluster at {address}" in err
    assert not (tmp_path / "runs" / "r").exists()
