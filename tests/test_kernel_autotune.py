"""The measured grouped-GEMM choice (models/kernels/autotune.py, bench/kernel_tuning.py): the
machine key, the shape classes, the table file's round trip and its refusal of corrupt and
foreign files, the choice from injected (fake) timings, its determinism once cached, and the run
manifest that records it. No real timing: every timer here is fake."""

from __future__ import annotations

import json

import pytest
import torch

from bench.cli import main
from bench.kernel_tuning import read_table, table_path, tuned_kernels, tuning_for
from bench.manifest import read_manifest
from models.kernels import autotune, dispatch
from models.kernels.autotune import (
    Autotuner,
    Choice,
    MachineKey,
    ShapeClass,
    TableRefused,
    TuningTable,
    machine_key,
    shape_class,
)


def fake_timer(seconds: dict[str, float], calls: list[str] | None = None):
    def timer(impl: str, cls: ShapeClass) -> float:
        if calls is not None:
            calls.append(impl)
        return seconds[impl]

    return timer


def failing_timer(impl: str, cls: ShapeClass) -> float:
    raise AssertionError(f"timed {impl} on {cls.key}: the choice should have come from the table")


PATHS = tuple(dispatch.IMPLEMENTATIONS)
KEY = MachineKey("cpu", "Some CPU", "abcd", "AVX512", "2.13.0+cpu", 2)


def test_the_machine_key_changes_with_threads_flags_and_torch(monkeypatch) -> None:
    monkeypatch.setattr(autotune, "_cpu_facts", lambda: ("EPYC", "flags-a"))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    two = machine_key()
    assert two == machine_key() and two.digest() == machine_key().digest()  # stable
    assert (two.cpu, two.cpu_flags, two.threads, two.device) == ("EPYC", "flags-a", 2, "cpu")
    assert two.torch == torch.__version__
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert machine_key().digest() != two.digest()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(autotune, "_cpu_facts", lambda: ("EPYC", "flags-b"))  # AVX2 vs AVX-512
    assert machine_key().digest() != two.digest()
    monkeypatch.setattr(autotune, "_cpu_facts", lambda: ("EPYC", "flags-a"))
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert machine_key().digest() != two.digest()


def test_shape_classes_round_rows_per_expert_to_a_power_of_two() -> None:
    weight = torch.zeros(8, 512, 2048)
    assert shape_class(weight, 8 * 1024).key == "cpu float32 E8 K512 N2048 r1024"
    assert shape_class(weight, 8 * 90).rows_per_expert == 64  # log2(90) = 6.49
    assert shape_class(weight, 8 * 91).rows_per_expert == 128  # log2(91) = 6.51
    assert shape_class(weight, 3).rows_per_expert == 1  # fewer rows than experts
    assert shape_class(weight.bfloat16(), 4096).dtype == "bfloat16"
    assert shape_class(weight, 8 * 1024).rows == 8 * 1024


def test_autotune_picks_the_fastest_of_fake_timings_interleaved() -> None:
    cls = shape_class(torch.zeros(8, 64, 64), 512)
    calls: list[str] = []
    times = {"torch": 1.0, "mm": 0.9, "mm_concurrent": 0.5, "bmm": 0.7}
    choice = autotune.autotune(cls, tuple(times), fake_timer(times, calls), rounds=3)
    assert choice.impl == "mm_concurrent"
    assert choice.seconds == times
    # one warm-up call each, then rounds that call every path in turn
    assert calls == list(times) * 4


def test_autotune_keeps_the_rules_choice_unless_another_is_clearly_faster() -> None:
    cls = shape_class(torch.zeros(8, 64, 64), 512)
    near = {"torch": 1.0, "mm": 0.98, "bmm": 1.5}  # 2 % faster: within TIE_MARGIN
    assert autotune.autotune(cls, tuple(near), fake_timer(near)).impl == "torch"
    clear = {"torch": 1.0, "mm": 0.9, "bmm": 1.5}
    assert autotune.autotune(cls, tuple(clear), fake_timer(clear)).impl == "mm"


def test_the_median_decides_not_one_outlier() -> None:
    cls = shape_class(torch.zeros(8, 64, 64), 512)
    rounds = iter([9.0, 1.0] + [0.1, 1.0] + [5.0, 1.0] * 3)  # warm-ups, then one fast mm round

    def timer(impl: str, _cls: ShapeClass) -> float:
        return next(rounds)

    assert autotune.autotune(cls, ("mm", "torch"), timer, rounds=4).impl == "torch"


def test_the_table_round_trips_through_its_file(tmp_path) -> None:
    table = TuningTable(KEY).with_choice(
        "cpu float32 E8 K64 N64 r64", Choice("mm", {"mm": 0.5, "torch": 0.75}, 1.25)
    )
    assert TuningTable.from_json(table.to_json(), KEY, PATHS) == table
    path = table_path(tmp_path, KEY)
    assert path.name == f"grouped_mm-{KEY.digest()}.json"
    assert read_table(path, KEY) == TuningTable(KEY)  # none yet: an empty table
    path.parent.mkdir(parents=True)
    path.write_text(table.to_json())
    assert read_table(path, KEY) == table


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        json.dumps({"format": "something else"}),
        "\udcff",
    ],
)
def test_a_corrupt_table_is_refused(text: str) -> None:
    with pytest.raises(TableRefused) as err:
        TuningTable.from_json(text, KEY, PATHS)
    assert err.value.kind == "corrupt"


def test_a_table_naming_an_unknown_path_or_missing_fields_is_refused() -> None:
    body = json.loads(TuningTable(KEY).with_choice("c", Choice("mm", {"mm": 1.0})).to_json())
    body["choices"]["c"]["impl"] = "fast_magic"
    with pytest.raises(TableRefused, match="unknown paths fast_magic"):
        TuningTable.from_json(json.dumps(body), KEY, PATHS)
    del body["machine"]["threads"]
    with pytest.raises(TableRefused) as err:
        TuningTable.from_json(json.dumps(body), KEY, PATHS)
    assert err.value.kind == "corrupt"


def test_another_machines_table_is_refused_as_foreign() -> None:
    other = MachineKey("cpu", "Some CPU", "abcd", "AVX2", "2.13.0+cpu", 2)
    with pytest.raises(TableRefused) as err:
        TuningTable.from_json(TuningTable(other).to_json(), KEY, PATHS)
    assert err.value.kind == "foreign"
    # the digest is checked too: a key edited by hand with the old digest left is refused
    body = json.loads(TuningTable(KEY).to_json())
    body["digest"] = other.digest()
    with pytest.raises(TableRefused):
        TuningTable.from_json(json.dumps(body), KEY, PATHS)


def test_an_unusable_table_file_gives_the_rule_with_the_reason_and_is_kept(
    tmp_path, capsys
) -> None:
    path = table_path(tmp_path, machine_key())
    path.parent.mkdir(parents=True)
    path.write_text("garbage")
    tuning, tuner = tuning_for("autotune", tmp_path, timer=failing_timer)
    assert tuner is None and tuning.mode == "rule"
    assert "corrupt table, the rule runs instead" in tuning.reason and str(path) in tuning.reason
    with tuned_kernels("autotune", tmp_path, timer=failing_timer):
        assert dispatch.active_tuner() is None
    assert "grouped_mm kernels: corrupt table" in capsys.readouterr().err
    assert path.read_text() == "garbage"  # not overwritten
    link = table_path(tmp_path / "l", machine_key())
    link.parent.mkdir(parents=True)
    link.symlink_to(path)
    assert tuning_for("autotune", tmp_path / "l")[0].mode == "rule"


def test_rule_mode_installs_no_tuner(tmp_path) -> None:
    tuning, tuner = tuning_for("rule", tmp_path)
    assert (tuning.mode, tuner, tuning.reason) == ("rule", None, None)
    assert not (tmp_path / "kernels").exists()


def test_the_dispatcher_takes_the_tuners_choice_and_the_rule_without_rows(tmp_path) -> None:
    weight = torch.zeros(4, 32, 32)
    times = {"torch": 1.0, "mm": 1.0, "mm_concurrent": 1.0, "bmm": 0.1}
    with tuned_kernels("autotune", tmp_path, timer=fake_timer(times)) as tuning:
        assert tuning.mode == "autotune" and tuning.choices == {}
        assert dispatch.choose(weight, rows=64) == "bmm"
        assert dispatch.choose(weight) == dispatch.rule_choice(weight)  # no rows: the rule
        assert dispatch.describe(weight).startswith("autotuned per shape class")
    assert dispatch.active_tuner() is None  # restored
    assert dispatch.choose(weight, rows=64) == dispatch.rule_choice(weight, rows=64)


def test_a_tuner_refuses_another_thread_count(tmp_path, monkeypatch) -> None:
    times = {"torch": 1.0, "mm": 1.0, "mm_concurrent": 1.0, "bmm": 1.0}
    with tuned_kernels("autotune", tmp_path, timer=fake_timer(times)):
        threads = torch.get_num_threads()
        monkeypatch.setattr(dispatch.torch, "get_num_threads", lambda: threads + 1)
        with pytest.raises(RuntimeError, match=r"install a tuner after torch\.set_num_threads"):
            dispatch.choose(torch.zeros(4, 32, 32), rows=64)


def test_candidates_start_with_the_rules_choice_and_fit_the_weight(monkeypatch) -> None:
    monkeypatch.setattr(dispatch.torch, "get_num_threads", lambda: 2)
    weight = torch.zeros(8, 512, 512)
    assert dispatch.candidates(weight, 8 * 64) == ("mm_concurrent", "torch", "mm", "bmm")
    assert dispatch.candidates(weight, 8 * 1024) == ("torch", "mm", "mm_concurrent", "bmm")
    assert dispatch.candidates(torch.zeros(8, 6, 5), 64) == ("mm", "mm_concurrent", "bmm")
    monkeypatch.setattr(dispatch.torch, "get_num_threads", lambda: 1)
    assert "mm_concurrent" not in dispatch.candidates(weight, 8 * 64)


def test_the_choice_once_cached_is_read_back_not_timed_again(tmp_path) -> None:
    weight = torch.zeros(4, 32, 32)
    first = {"torch": 1.0, "mm": 0.2, "mm_concurrent": 1.0, "bmm": 1.0}
    with tuned_kernels("autotune", tmp_path, timer=fake_timer(first)):
        assert dispatch.choose(weight, rows=64) == "mm"
    # a second process with the same cache: the stored choice, with no timing at all
    with tuned_kernels("autotune", tmp_path, timer=failing_timer) as tuning:
        assert tuning.choices == {shape_class(weight, 64).key: "mm"}
        for _ in range(3):
            assert dispatch.choose(weight, rows=64) == "mm"
        assert dispatch.choose(weight, rows=70) == "mm"  # 17.5 rows per expert: the same class


def test_a_choice_another_process_stored_first_wins(tmp_path) -> None:
    weight = torch.zeros(4, 32, 32)
    key = machine_key()
    path = table_path(tmp_path, key)
    slow_bmm = {"torch": 1.0, "mm": 1.0, "mm_concurrent": 1.0, "bmm": 5.0}
    _, tuner = tuning_for("autotune", tmp_path, timer=fake_timer(slow_bmm))
    assert tuner is not None
    # meanwhile another process tuned the same class (and picked bmm) and wrote the file
    theirs = TuningTable(key).with_choice(shape_class(weight, 64).key, Choice("bmm", {"bmm": 1.0}))
    path.parent.mkdir(parents=True)
    path.write_text(theirs.to_json())
    assert tuner.choose(weight, 64) == "bmm"
    assert read_table(path, key).choices[shape_class(weight, 64).key].impl == "bmm"


def test_the_run_manifest_records_the_table_and_its_choices(tmp_path) -> None:
    base = ["run", "--suite", "smoke", "--models", "switch", "--tasks", "first"]
    base += ["--set", "train.steps=2", "--set", "train.eval_every=2", "--no-progress"]
    base += ["--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
    assert main([*base, "--run-id", "a"]) == 0
    manifest = read_manifest(tmp_path / "runs" / "a")
    tuning = manifest.kernel_tuning
    assert tuning["mode"] == "autotune" and tuning["reason"] is None
    assert tuning["table"] == str(table_path(tmp_path / "cache", machine_key()))
    assert tuning["digest"] == machine_key().digest()
    assert tuning["choices"] == {}  # a fresh cache: tuned during the run
    stored = read_table(table_path(tmp_path / "cache", machine_key()), machine_key())
    assert stored.choices, "the run tuned and stored the classes it met"
    assert all(k.startswith("cpu float32 E") for k in stored.choices)
    assert set(manifest.kernels["first"]["switch"].values()) == {
        f"autotuned per shape class (table {machine_key().digest()})"
    }
    # a second run on the same cache starts with those choices, and records them
    assert main([*base, "--run-id", "b"]) == 0
    again = read_manifest(tmp_path / "runs" / "b").kernel_tuning
    assert again["choices"] == {k: c.impl for k, c in stored.choices.items()}
    # --kernels rule: recorded as the rule, no table
    assert main([*base, "--run-id", "c", "--kernels", "rule"]) == 0
    assert read_manifest(tmp_path / "runs" / "c").kernel_tuning["mode"] == "rule"
    assert read_manifest(tmp_path / "runs" / "c").plan.kernels == "rule"


def test_an_autotuner_without_persist_keeps_its_table_in_memory() -> None:
    tuner = Autotuner(
        TuningTable(KEY), lambda w, r: ("mm", "bmm"), timer=fake_timer({"mm": 1.0, "bmm": 2.0})
    )
    assert tuner.choose(torch.zeros(2, 8, 8), 16) == "mm"
    assert list(tuner.table.choices) == ["cpu float32 E2 K8 N8 r8"]


def test_a_table_spoiled_during_a_run_is_left_alone(tmp_path, capsys) -> None:
    weight = torch.zeros(4, 32, 32)
    times = {"torch": 1.0, "mm": 1.0, "mm_concurrent": 1.0, "bmm": 1.0}
    with tuned_kernels("autotune", tmp_path, timer=fake_timer(times)):
        path = table_path(tmp_path, machine_key())
        path.parent.mkdir(parents=True)
        path.write_text("spoiled")
        assert dispatch.choose(weight, rows=64) == dispatch.rule_choice(weight, rows=64)
    assert path.read_text() == "spoiled"
    assert "not stored" in capsys.readouterr().err


def test_tuning_operands_spread_rows_as_random_routing_does() -> None:
    """Uneven counts (an even split would hide bmm's padding), summing to the class's rows,
    the same for the same seed."""
    cls = autotune.ShapeClass("cpu", "float32", 8, 16, 32, 64)
    x, weight, offsets, grad = autotune.operands(cls)
    counts = torch.diff(offsets.long(), prepend=torch.zeros(1, dtype=torch.long))  # (E,)
    assert int(offsets[-1]) == cls.rows == x.shape[0] == grad.shape[0]
    assert weight.shape == (8, 16, 32)
    assert counts.max() > counts.min()  # not an even split
    assert torch.equal(offsets, autotune.operands(cls)[2])
