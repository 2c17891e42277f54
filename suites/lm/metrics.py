"""The figures only language-modelling cells write (`SuiteSpec.metrics`): next-token loss as
perplexity (word level) or bits per byte (byte level), token throughput, FLOPs per token and the
causality probe's verdict. Perplexity and bits per byte are lower-is-better."""

from __future__ import annotations

from suites.metric import Display, Metric

_LOSS = Display("number", 4)
_NUMBER = Display("number", 3)
_SI = Display("si", 4)
_COUNT = Display("integer")

LM_METRICS: tuple[Metric, ...] = (
    Metric("test_loss_nats", "test loss", "nats", "lower", "seeded", "accuracy",
           "mean next-token cross-entropy per scored test token of the best-dev weights", _LOSS),
    Metric("dev_loss_nats", "dev loss", "nats", "lower", "seeded", "accuracy",
           "lowest mean next-token cross-entropy on dev seen in training (selects the weights)",
           _LOSS),
    Metric("test_perplexity", "test perplexity", "", "lower", "seeded", "accuracy",
           "exp(test_loss_nats): word-level corpora only", _NUMBER),
    Metric("test_bits_per_byte", "test bits/byte", "bits", "lower", "seeded", "accuracy",
           "test_loss_nats / ln 2 per byte: byte-level corpora only", _LOSS),
    Metric("dev_loss_curve", "dev loss curve", "nats", "lower", "seeded", "training",
           "[step, mean dev next-token loss] at each evaluation", _LOSS, "curve"),
    Metric("test_segment_loss_nats", "test loss per segment", "nats", "lower", "seeded",
           "accuracy", "mean next-token loss of each test segment, in split order (the report "
           "pairs models segment by segment before calling one better)", _LOSS, "samples"),
    Metric("test_scored_tokens", "scored test tokens", "count", "neither", "deterministic",
           "accuracy", "test tokens whose next-token loss the test figures average", _COUNT),
    Metric("train_tokens_per_s", "training tokens/s", "1/s", "higher", "timing", "throughput",
           "scored training tokens per second of train_compute_s (the whole run)", _NUMBER),
    Metric("infer_tokens_per_s", "inference tokens/s", "1/s", "higher", "timing", "throughput",
           "tokens of the measured batch / the median inference-batch latency", _NUMBER),
    Metric("flops_fwd_per_token", "forward FLOPs per token", "FLOP", "lower", "deterministic",
           "flops", "flops_fwd_per_example / the segment length (max_len)", _SI, cost=True),
    Metric("causal_leak", "leaks the future", "", "neither", "deterministic", "diagnostics",
           "1 when the causality probe saw an output move with only later tokens changed, "
           "else 0; a leaking model's loss is marked and never ranked", _COUNT),
    Metric("causal_max_rel_change", "causality probe: max relative change", "fraction",
           "lower", "deterministic", "diagnostics",
           "largest change of a logit at a position <= t when only tokens > t changed, over "
           "that position's largest logit (models/causality.py)", _NUMBER),
    Metric("causal_fraction_changed", "causality probe: positions moved", "fraction", "lower",
           "deterministic", "diagnostics",
           "share of the checked (sequence, position <= t, cut, trial) rows whose logits moved "
           "beyond the probe's tolerance when only later tokens changed", _NUMBER),
    Metric("causal_probe_error", "causality probe refused", "", "neither", "deterministic",
           "diagnostics", "why the probe could not judge the model (not deterministic in eval "
           "mode); the cell's loss is then never ranked", _NUMBER, "text"),
    Metric("causal_probe", "causality probe", "", "neither", "deterministic", "diagnostics",
           "the probe's figures and settings: cuts, trials, tolerance, noise floor, positions "
           "checked", _NUMBER, "mapping"),
)  # fmt: skip
