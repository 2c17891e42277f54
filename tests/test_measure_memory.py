"""Peak memory on CPU from the profiler's memory events, and the running-sum peak itself."""

from __future__ import annotations

import torch

from bench.measure.memory import CPU_METHOD, measure_peak, peak_of_events, resident_bytes

MB4 = 1_000_000  # float32 elements in 4 MB


def test_cpu_peak_counts_tensors_alive_at_the_same_time() -> None:
    def phase() -> None:
        a = torch.ones(MB4)  # 4 MB
        b = torch.ones(MB4)  # 4 MB more while a is alive: the peak
        del a, b
        c = torch.ones(MB4 // 2)  # 2 MB after both were freed: not a new peak
        del c

    peak = measure_peak(phase, "cpu", resident=1000)
    assert peak.method == CPU_METHOD and peak.reserved_bytes is None
    extra = peak.peak_bytes - 1000
    assert 8_000_000 <= extra < 8_000_000 + 65_536, extra


def test_peak_of_events_is_the_running_sum_maximum_in_event_order() -> None:
    def event(index: int, nbytes: int, device: int = 0) -> dict:
        return {
            "name": "[memory]",
            "args": {"Bytes": nbytes, "Ev Idx": index, "Device Type": device},
        }

    events = [event(3, -50), event(1, 100), event(2, 30), event(4, 10), event(5, 999, device=1)]
    events.append({"name": "aten::mm", "args": {}})
    assert peak_of_events(events) == 130  # +100, +30, -50, +10; the CUDA event is not CPU memory
    assert peak_of_events([]) == 0


def test_resident_bytes_counts_shared_storage_once() -> None:
    model = torch.nn.Linear(10, 10)
    model.extra = torch.nn.Linear(10, 10)
    model.extra.weight = model.weight  # tied: one storage
    expected = (100 + 10 + 10) * 4  # weight, two biases
    assert resident_bytes(model) == expected
    optimizer = torch.optim.AdamW(model.parameters())
    model.extra(model(torch.randn(2, 10))).sum().backward()  # every parameter gets a gradient
    optimizer.step()
    # + gradients (weight, two biases) + Adam's exp_avg and exp_avg_sq of each, + step counters
    grads_and_state = 3 * expected + 3 * 4
    assert resident_bytes(model, optimizer) == expected + grads_and_state
