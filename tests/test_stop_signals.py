"""bench.stop_signals: under `bench run`'s handler a stop signal that arrives inside
`stop_signals_held()` waits for the block to end, whichever thread the kernel hands it to."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from bench.runner.interrupt import RunInterrupted, interruptible
from bench.stop_signals import stop_signals_held


def kill_from_another_thread(signum: int) -> None:
    """A process-directed signal sent by a thread that does not block it (as a torch process's
    OpenMP pool does not): pthread_sigmask in the main thread would not hold it back."""
    sender = threading.Thread(target=os.kill, args=(os.getpid(), signum))
    sender.start()
    sender.join()


def test_a_signal_inside_the_block_is_raised_as_the_block_ends() -> None:
    steps = []
    with pytest.raises(RunInterrupted) as stopped, interruptible(), stop_signals_held():
        kill_from_another_thread(signal.SIGTERM)
        for step in range(1000):  # bytecodes enough for a pending handler to run
            steps.append(step)
    assert len(steps) == 1000
    assert stopped.value.signum == signal.SIGTERM and stopped.value.exit_code == 143


def test_outside_the_block_the_signal_stops_at_once() -> None:
    steps = []
    with pytest.raises(RunInterrupted), interruptible():
        kill_from_another_thread(signal.SIGINT)
        for step in range(1000):
            steps.append(step)
    assert len(steps) < 1000


def test_nested_blocks_deliver_once_at_the_outermost_end() -> None:
    reached = []
    with pytest.raises(RunInterrupted) as stopped, interruptible():
        with stop_signals_held():
            with stop_signals_held():
                kill_from_another_thread(signal.SIGINT)
                kill_from_another_thread(signal.SIGTERM)
            reached.append("inner ended")
        reached.append("outer ended")
    assert reached == ["inner ended"]
    assert stopped.value.signum == signal.SIGINT  # the first signal that arrived


def test_a_block_that_raises_still_delivers_the_signal() -> None:
    with pytest.raises(RunInterrupted) as stopped, interruptible(), stop_signals_held():
        kill_from_another_thread(signal.SIGINT)
        raise ValueError("the block failed")
    assert isinstance(stopped.value.__context__, ValueError)
    with interruptible(), stop_signals_held():  # nothing left pending
        pass
