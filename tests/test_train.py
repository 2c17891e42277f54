from __future__ import annotations

import pytest
import torch
from torch import nn

from bench import catalog
from bench.train import TrainingDiverged, lr_factor, train_and_evaluate
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
    model = catalog.MODELS.get("full_attention")(
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


def test_selected_weights_are_the_best_dev_ones() -> None:
    """Test accuracy is measured on the weights of the best dev evaluation, not the last."""
    torch.manual_seed(0)
    model = catalog.MODELS.get("full_attention")(
        ModelConfig(dim=16, depth=1, heads=2, ffn_dim=32), _toy_task()
    )
    data = _toy_data()
    cfg = TrainConfig(batch_size=32, steps=60, warmup_steps=5, lr=3e-3, eval_every=20)
    result = train_and_evaluate(model, data, cfg, seed=0, device=torch.device("cpu"))
    from bench.train import evaluate

    assert evaluate(model, data.dev, 64, torch.device("cpu")) == result.dev_accuracy
    assert evaluate(model, data.test, 64, torch.device("cpu")) == result.accuracy


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
