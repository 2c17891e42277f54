from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from bench import registries
from bench.train import TrainingDiverged, evaluate, log_every, lr_factor, train_and_evaluate
from models.config import ModelConfig, ModelTask
from models.layers.classifier import ModelOutput
from suites.config import TrainConfig
from suites.data import Split, TaskData


def _contains_three(n: int, seed: int) -> Split:
    """Label 1 iff token 3 occurs: learnable by mean pooling, majority rate about 0.57."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 11, (n, 8), generator=g)
    return Split((tokens,), (torch.full((n,), 8),), (tokens == 3).any(1).long())


def _toy_data() -> TaskData:
    return TaskData(
        _contains_three(1024, 0), _contains_three(256, 1), _contains_three(256, 2), "synthetic"
    )


def _toy_task() -> ModelTask:
    return ModelTask(num_classes=2, vocab_size=11, num_inputs=1, max_len=8)


def test_lr_schedule_is_linear_warmup_then_linear_decay() -> None:
    factors = [lr_factor(s, warmup=4, total=12) for s in range(12)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4:] == pytest.approx([1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8])


def test_training_drives_the_loss_down_and_beats_majority() -> None:
    torch.manual_seed(0)
    model = registries.MODELS.get("full_attention")(
        ModelConfig(dim=32, depth=1, heads=2, ffn_dim=64), _toy_task()
    )
    data = _toy_data()
    cfg = TrainConfig(batch_size=32, steps=240, warmup_steps=20, lr=3e-3, eval_every=40)
    result = train_and_evaluate(model, data, cfg, seed=0, device=torch.device("cpu"))
    assert result.loss_curve[-1] < 0.5 * result.loss_curve[0]
    assert result.accuracy > data.test.majority_rate() + 0.2
    _, best_dev = max(result.dev_curve, key=lambda p: p[1])
    assert result.dev_accuracy == best_dev
    assert [s for s, _ in result.dev_curve] == [40, 80, 120, 160, 200, 240]
    assert result.examples_per_s > 0 and result.train_time_s >= result.train_compute_s


class _Threshold(nn.Module):
    """logits [v / 10, b] for an example whose first token is v: class 1 iff the one trained
    weight b exceeds v / 10. Every training label is 1, so every step raises b (the gradient of
    the cross-entropy on b is p_1 - 1 < 0); b at each evaluation forward is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.b = nn.Parameter(torch.zeros(()))
        self.b_at_eval: list[float] = []  # not state: survives load_state_dict

    def forward(self, inputs, lengths) -> ModelOutput:
        threshold = inputs[0][:, 0].float() / 10  # (B,)
        if not self.training:
            self.b_at_eval.append(float(self.b))
        logits = torch.stack([threshold, self.b.expand_as(threshold)], dim=-1)  # (B, 2)
        return ModelOutput(logits, logits.new_zeros(()), ())


def _first_tokens(values: list[int], labels: list[int]) -> Split:
    tokens = torch.tensor(values)[:, None].repeat(1, 2)  # (N, 2)
    return Split((tokens,), (torch.full((len(values),), 2),), torch.tensor(labels))


def _threshold_accuracy(b: float, values: list[int], labels: list[int]) -> float:
    """Hand evaluation of _Threshold: predicts 1 iff b > v / 10 (a tie goes to class 0)."""
    return sum(int(b > v / 10) == y for v, y in zip(values, labels, strict=True)) / len(values)


def test_selected_weights_are_the_best_dev_ones() -> None:
    """Dev accuracy peaks while b is in (0.3, 0.6] and falls as b keeps rising, so the best dev
    evaluation is not the last one: the test accuracy reported must be the hand-evaluated one of
    b at the best dev evaluation, and the model must be left holding that b."""
    dev_v, dev_y = [1, 2, 3, 6, 7, 8, 9], [1, 1, 1, 0, 0, 0, 0]  # all right iff 0.3 < b <= 0.6
    test_v, test_y = list(range(1, 10)), [1, 1, 1, 1, 0, 0, 0, 0, 0]
    data = TaskData(
        _first_tokens([5] * 64, [1] * 64),
        _first_tokens(dev_v, dev_y),
        _first_tokens(test_v, test_y),
        "synthetic",
    )
    model = _Threshold()
    # b rises by about lr * (40 - s) / 40 per step s: ~0.44 at step 10, ~1.0 at step 40.
    cfg = TrainConfig(batch_size=16, steps=40, warmup_steps=0, lr=0.05, eval_every=5)
    result = train_and_evaluate(model, data, cfg, seed=0, device=torch.device("cpu"))

    assert [s for s, _ in result.dev_curve] == [5, 10, 15, 20, 25, 30, 35, 40]
    b_at_dev = model.b_at_eval[: len(result.dev_curve)]  # one batch per dev evaluation
    assert [a for _, a in result.dev_curve] == [
        _threshold_accuracy(b, dev_v, dev_y) for b in b_at_dev
    ]
    best = max(range(len(b_at_dev)), key=lambda i: (result.dev_curve[i][1], -i))  # first best
    assert result.best_step == result.dev_curve[best][0] < cfg.steps
    assert result.dev_accuracy == 1.0 > result.dev_curve[-1][1]
    b_best, b_last = b_at_dev[best], b_at_dev[-1]
    assert result.accuracy == _threshold_accuracy(b_best, test_v, test_y)
    assert result.accuracy != _threshold_accuracy(b_last, test_v, test_y)  # the check can fail
    assert float(model.b.detach()) == b_best  # the best-dev weights were restored
    reloaded = _Threshold()
    with torch.no_grad():
        reloaded.b.fill_(b_best)
    assert evaluate(reloaded, data.test, 64, torch.device("cpu")) == result.accuracy


class _NaNModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))

    def forward(self, inputs, lengths) -> ModelOutput:
        logits = self.w.expand(inputs[0].shape[0], 2) * float("nan")
        return ModelOutput(logits, logits.new_zeros(()), ())


def test_nan_loss_stops_training() -> None:
    with pytest.raises(TrainingDiverged, match="loss became nan at step 1"):
        train_and_evaluate(
            _NaNModel(), _toy_data(), TrainConfig(steps=5), seed=0, device=torch.device("cpu")
        )


def test_the_timed_step_is_the_step_that_trains() -> None:
    """The measurement's training step (bench.measure.cell.TimedModel) runs TrainStep with the
    run's optimizer settings: k timed steps leave the copy's weights where k steps of
    hand-written AdamW (the configured weight decay, eps 1e-6, the warmup schedule, clipping)
    leave an independent copy. It once used torch's default weight_decay=0.01 and no schedule."""
    from bench.measure.cell import TimedModel

    torch.manual_seed(0)
    model = registries.MODELS.get("full_attention")(
        ModelConfig(dim=16, depth=1, heads=2, ffn_dim=32), _toy_task()
    )
    batch = _contains_three(8, 3)
    cfg = TrainConfig(lr=1e-2, weight_decay=0.3, warmup_steps=2, steps=5, grad_clip=0.5)
    before = copy.deepcopy(model.state_dict())
    timed = TimedModel(model, batch, train=cfg, device=torch.device("cpu"))
    for _ in range(3):
        timed.train_step()
    for name, value in model.state_dict().items():  # the timing runs on a copy
        assert value.equal(before[name]), name

    reference = copy.deepcopy(model)
    params = list(reference.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, eps=1e-6, weight_decay=cfg.weight_decay)
    for step in range(3):
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg.warmup_steps, cfg.steps)
        optimizer.zero_grad()
        out = reference(batch.inputs, batch.lengths)
        (nn.functional.cross_entropy(out.logits, batch.labels) + out.aux_loss).backward()
        nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
    for got, want in zip(timed.work.parameters(), params, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_the_loss_is_logged_every_hundredth_of_the_run_with_the_budget_at_each_eval() -> None:
    """250 steps log the loss every 2 steps (and at the last): each point is the mean of the
    losses the progress callback saw in its interval; each evaluation carries the examples seen
    (steps x batch) and the training-step seconds so far."""
    data = TaskData(
        _first_tokens([5] * 64, [1] * 64), _first_tokens([1, 9], [1, 0]),
        _first_tokens([1, 9], [1, 0]), "synthetic",
    )  # fmt: skip
    seen: list[float] = []
    cfg = TrainConfig(batch_size=16, steps=251, warmup_steps=0, lr=0.01, eval_every=100)
    result = train_and_evaluate(
        _Threshold(), data, cfg, seed=0, device=torch.device("cpu"),
        progress=lambda step, loss: seen.append(loss),
    )  # fmt: skip
    assert log_every(251) == 2 and log_every(40) == 1
    expected = [(s, (seen[s - 2] + seen[s - 1]) / 2) for s in range(2, 251, 2)] + [(251, seen[250])]
    assert [s for s, _ in result.train_loss_curve] == [s for s, _ in expected]
    assert [v for _, v in result.train_loss_curve] == pytest.approx([v for _, v in expected])
    assert [s for s, _ in result.dev_curve] == [100, 200, 251]
    assert result.dev_curve_examples == [1600, 3200, 4016]
    times = result.dev_curve_train_s
    assert 0 < times[0] < times[1] < times[2] == pytest.approx(result.train_compute_s)
