"""The language-modelling suite end to end: the next-token loss against an independent
log-softmax, the causality probe on models whose leaks are known by construction, bits per byte
and perplexity, a cell that has no causal form recorded skipped, a leaking cell marked and never
ranked in the report, and a real tiny run of full_attention."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from bench.cli import main
from bench.metric_catalog import catalog_for
from bench.records import read_records
from bench.report.frame import load_runs
from bench.report.lm_tables import lm_tables
from bench.runner import RunPlan, resolve
from bench.runner.lm_cell import lm_metrics, probe_figures, probe_metrics, run_probe
from bench.train_lm import evaluate_loss, segment_losses
from bench.train_step import task_loss
from models import registry
from models.errors import NoCausalForm
from models.layers.classifier import ModelOutput
from suites.lm.metrics import LM_METRICS
from suites.lm.segments import IGNORE_INDEX, LMInfo, LMTaskData, segments


class ToyLM(nn.Module):
    """Logits at t from the mean embedding of tokens t-back..t+ahead: `ahead` > 0 sees the future
    by exactly that many positions; `whole` adds the whole sequence's mean (every position sees
    every later token)."""

    def __init__(self, vocab: int, ahead: int = 0, whole: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.head = nn.Linear(8, vocab)
        self.ahead, self.whole = ahead, whole

    def forward(self, inputs, lengths) -> ModelOutput:
        x = self.embed(inputs[0])  # (B, L, D)
        h = x.cumsum(1) / torch.arange(1, x.shape[1] + 1)[None, :, None]  # causal running mean
        if self.ahead:
            h = (
                h
                + torch.roll(x, -self.ahead, dims=1)
                * (torch.arange(x.shape[1]) < x.shape[1] - self.ahead)[None, :, None]
            )
        if self.whole:
            h = h + x.mean(1, keepdim=True)
        return ModelOutput(self.head(h), torch.zeros(()), ())


def _lm_data(stream: torch.Tensor, max_len: int) -> LMTaskData:
    split = segments(stream, max_len, 100)
    return LMTaskData(split, split, split, "test stream", LMInfo("byte", "p", {}))


def test_task_loss_is_the_mean_over_scored_positions() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g)
    labels = torch.randint(0, 7, (2, 5), generator=g)
    labels[1, 3:] = IGNORE_INDEX
    logp = logits.log_softmax(-1)
    picked = [-logp[b, t, labels[b, t]] for b in range(2) for t in range(5) if labels[b, t] >= 0]
    assert task_loss(logits, labels).item() == pytest.approx(float(sum(picked) / 8), rel=1e-6)


def test_evaluate_loss_sums_every_scored_token_once() -> None:
    torch.manual_seed(0)
    model = ToyLM(11)
    split = segments(torch.randint(1, 11, (23,)), max_len=5, max_segments=100)  # 22 scored
    total, count = evaluate_loss(model, split, batch_size=2, device=torch.device("cpu"))
    assert count == 22
    with torch.no_grad():
        logits = model(split.inputs, split.lengths).logits
    mask = split.labels != IGNORE_INDEX
    logp = logits.log_softmax(-1)[mask]  # (22, V)
    expected = -logp.gather(1, split.labels[mask][:, None]).sum()
    assert total == pytest.approx(float(expected), rel=1e-5)


def test_segment_losses_are_each_segments_own_mean() -> None:
    torch.manual_seed(0)
    model = ToyLM(11)
    split = segments(torch.randint(1, 11, (23,)), max_len=5, max_segments=100)
    sums, counts = segment_losses(model, split, batch_size=2, device=torch.device("cpu"))
    assert counts.tolist() == [5, 5, 5, 5, 2]
    with torch.no_grad():
        logp = model(split.inputs, split.lengths).logits.log_softmax(-1)  # (N, L, V)
    for i in range(len(split)):
        scored = split.labels[i] != IGNORE_INDEX
        picked = logp[i][scored].gather(1, split.labels[i][scored][:, None])
        assert float(sums[i]) == pytest.approx(float(-picked.sum()), rel=1e-5)


@pytest.mark.parametrize("ahead", [0, 1, 3])
def test_the_probe_run_by_lm_cells_counts_the_positions_that_see_later_tokens(ahead) -> None:
    """A look-ahead of k moves, at cut t, the positions p <= t with p + k > t that have a token
    k ahead (p + k < 32): over the default cuts of a 32-token segment (0, 8, 16, 24, 30) that
    share of the sum(t + 1) = 83 checked positions per sequence and trial."""
    torch.manual_seed(0)
    data = _lm_data(torch.randint(1, 20, (200,)), max_len=32)
    probe = run_probe(ToyLM(20, ahead), data, 20, seed=0, device=torch.device("cpu"))
    cuts = (0, 8, 16, 24, 30)
    assert probe.cuts == cuts
    moved = sum(1 for t in cuts for p in range(t + 1) if p + ahead > t and p + ahead < 32)
    assert probe.fraction_changed == pytest.approx(moved / sum(t + 1 for t in cuts))
    assert probe.leaks == (ahead > 0)
    metrics = probe_metrics(probe)
    assert metrics["causal_leak"] == int(ahead > 0)
    assert metrics["causal_fraction_changed"] == probe.fraction_changed
    if not ahead:
        assert probe.max_rel_change == 0.0


def test_a_whole_sequence_leak_moves_every_checked_position() -> None:
    torch.manual_seed(0)
    data = _lm_data(torch.randint(1, 20, (200,)), max_len=32)
    probe = run_probe(ToyLM(20, whole=True), data, 20, seed=0, device=torch.device("cpu"))
    assert probe.leaks and probe.fraction_changed == 1.0


class NoisyLM(ToyLM):
    """Not deterministic in eval mode: the probe refuses to judge it."""

    def forward(self, inputs, lengths) -> ModelOutput:
        out = super().forward(inputs, lengths)
        return ModelOutput(out.logits + torch.randn_like(out.logits), out.aux_loss, ())


def test_a_model_the_probe_cannot_judge_is_recorded_so() -> None:
    data = _lm_data(torch.randint(1, 20, (200,)), max_len=32)
    figures = probe_figures(NoisyLM(20), data, 20, seed=0, device=torch.device("cpu"))
    assert set(figures) == {"causal_probe_error"}
    assert "not deterministic" in figures["causal_probe_error"]


def test_bits_per_byte_and_perplexity_from_nats() -> None:
    from bench.train_lm import LMTrainResult

    result = LMTrainResult(
        2.0, 2.1, 3, 2.2, 1.0, 0.5, 10.0, 100.0, 50, [2.0], [2.2], [], [], [], [], []
    )
    assert lm_metrics(result, "byte")["test_bits_per_byte"] == pytest.approx(2.0 / math.log(2))
    assert "test_perplexity" not in lm_metrics(result, "byte")
    assert lm_metrics(result, "word")["test_perplexity"] == pytest.approx(math.exp(2.0))


def test_lm_figures_are_lower_is_better_in_the_catalog() -> None:
    catalog = catalog_for(LM_METRICS)
    for name in ("test_perplexity", "test_bits_per_byte", "test_loss_nats", "dev_loss_nats"):
        assert catalog.get(name).direction == "lower"
    assert catalog.get("train_tokens_per_s").direction == "higher"


def test_the_lm_suite_builds_causal_tasks() -> None:
    resolved = resolve(RunPlan("lm", "tiny", ("full_attention",), ("stdlib",), (0,)))
    task = resolved.tasks["stdlib"].model_task(64)
    assert task.causal and task.num_classes == 257 and task.max_len == 64


@pytest.fixture
def toy_models(monkeypatch):
    """Three models registered for one test: causal, leaking, and one with no causal form."""

    def causal(cfg, task):
        return ToyLM(task.num_classes)

    def leaking(cfg, task):
        return ToyLM(task.num_classes, whole=True)

    def no_causal(cfg, task):
        raise NoCausalForm("toy_nocausal has no causal form: it projects along the sequence")

    entries = dict(registry.MODELS._entries)
    for name, build in (("toy_causal", causal), ("toy_leak", leaking), ("toy_nocausal", no_causal)):
        entries[name] = registry.Entry(name, build, f"{name} (test)", None)
    monkeypatch.setattr(registry.MODELS, "_entries", entries)


def _lm_run(tmp_path: Path, models: str, *extra: str) -> int:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    for i in range(80):  # enough files for every split
        (corpus / f"f{i:02d}.py").write_text(f"def f{i}(x):\n    return x * {i}\n" * 20)
    return main(
        ["run", "--suite", "lm", "--scale", "tiny", "--tasks", "stdlib", "--models", models,
         "--out", str(tmp_path / "runs"), "--run-id", "r", "--cache-dir", str(tmp_path / "c"),
         "--data-dir", f"stdlib={corpus}", "--no-progress", "--set", "train.steps=4",
         "--set", "train.eval_every=2", "--set", "data.n_train=32", "--set", "data.n_test=8",
         "--set", "data.n_dev=8", "--set", "measure.fvcore=false", *extra]
    )  # fmt: skip


def test_lm_cells_record_skips_leaks_and_the_report_never_ranks_a_leak(
    tmp_path, toy_models, capsys
) -> None:
    code = _lm_run(tmp_path, "toy_causal,toy_leak,toy_nocausal")
    out = capsys.readouterr().out
    assert code == 0, out
    records = {r.model: r for r in read_records(tmp_path / "runs" / "r")}
    skipped = records["toy_nocausal"]
    assert skipped.status == "skipped" and "projects along the sequence" in skipped.reason
    good, leak = records["toy_causal"], records["toy_leak"]
    assert good.metrics["causal_leak"] == 0 and leak.metrics["causal_leak"] == 1
    for r in (good, leak):
        m = r.metrics
        assert m["test_bits_per_byte"] == pytest.approx(m["test_loss_nats"] / math.log(2))
        assert m["flops_fwd_per_token"] == pytest.approx(m["flops_fwd_per_example"] / 64)
        assert m["test_scored_tokens"] == r.data["scored_tokens"]["test"]
        assert len(m["test_segment_loss_nats"]) == r.data["n_test"]
        assert r.data["token_unit"] == "byte" and "no memory" in r.data["eval_protocol"]
        assert len(r.data["corpus"]["test"]["sha256"]) == 64
    assert "LEAKS" in out and "no causal form" in out
    manifest = json.loads((tmp_path / "runs" / "r" / "manifest.json").read_text())
    assert any(m["name"] == "test_bits_per_byte" for m in manifest["suite_metrics"])
    (table,) = lm_tables(load_runs([tmp_path / "runs" / "r"]))
    rows = {row[0].text: row for row in table.rows}
    assert rows["toy_leak"][1].text.endswith("§") and rows["toy_leak"][1].rank == 0
    assert rows["toy_leak"][1].value is None  # never ranked
    assert any("leaks the future" in n and "toy_leak on stdlib" in n for n in table.notes)


@pytest.mark.slow
def test_full_attention_trains_as_a_causal_lm_on_the_stdlib_corpus(tmp_path, capsys) -> None:
    assert _lm_run(tmp_path, "full_attention", "--set", "train.steps=20") == 0
    (record,) = read_records(tmp_path / "runs" / "r")
    assert record.status == "ok", record.reason
    assert record.metrics["causal_leak"] == 0
    assert record.metrics["test_bits_per_byte"] < 8.0  # below a uniform guess over 256 bytes
