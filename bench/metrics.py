"""The harness's figures, each declared once: every figure a record of any suite can carry, with
its unit, direction, kind, display and one line of meaning (`suites.metric.Metric`). Tables,
CSV headers, plot axes, `bench compare`'s gates and the record-format table in
`results/README.md` read this list (through `bench.metric_catalog`); nothing guesses a figure's
meaning from its name. A suite adds the figures only its cells write in `SuiteSpec.metrics`.

Imports nothing heavy: the report side reads it without torch.
"""

from __future__ import annotations

from suites.metric import Display, Metric

PERCENT = Display("percent", 2)
SI = Display("si", 3)
SI4 = Display("si", 4)
COUNT = Display("integer")
NUMBER = Display("number", 3)


def _fraction(name: str, label: str, direction, kind, description: str) -> Metric:
    return Metric(name, label, "fraction", direction, kind, "accuracy", description, PERCENT)


def _flops(name: str, label: str, description: str, replaced_by: str = "") -> Metric:
    return Metric(name, label, "FLOP", "lower", "deterministic", "flops", description, SI4,
                  cost=True, replaced_by=replaced_by)  # fmt: skip


def _latency(phase: str, what: str) -> tuple[Metric, ...]:
    samples = f"latency_{phase}_s_samples"
    cpu_samples = f"cpu_time_{phase}_s_samples"
    return (
        Metric(f"latency_{phase}_s_median", f"{what} latency (median)", "s", "lower", "timing",
               "latency", f"median wall seconds of one {what}", SI, samples=samples, cost=True),
        Metric(f"latency_{phase}_s_p90", f"{what} latency (p90)", "s", "lower", "timing",
               "latency", f"90th-percentile wall seconds of one {what} (a tail: printed by "
               "bench compare, never gated)", SI, samples=samples, gated=False),
        Metric(samples, f"{what} latency samples", "s", "lower", "timing", "latency",
               f"every timed {what} in wall seconds, in the order taken", SI, "samples"),
        Metric(f"cpu_time_{phase}_s_median", f"{what} CPU time (median)", "s", "lower", "timing",
               "latency", f"median process CPU seconds (all threads) of one {what}; steadier "
               "than wall time on a shared machine (CPU runs only)", SI, samples=cpu_samples,
               load_steady=True),
        Metric(cpu_samples, f"{what} CPU time samples", "s", "lower", "timing", "latency",
               f"process CPU seconds of every timed {what} (CPU runs only)", SI, "samples"),
    )  # fmt: skip


def _memory(name: str, label: str, description: str) -> Metric:
    return Metric(name, label, "B", "lower", "memory", "memory", description, SI, cost=True)


def _note(name: str, label: str, kind, group: str, description: str, shape="text") -> Metric:
    return Metric(name, label, "", "neither", kind, group, description, NUMBER, shape)


HARNESS_METRICS: tuple[Metric, ...] = (
    # -- size
    Metric("params_total", "parameters", "count", "neither", "deterministic", "parameters",
           "every parameter of the model", COUNT, cost=True),
    Metric("params_active", "active parameters", "count", "neither", "deterministic",
           "parameters", "parameters one token uses (below the total only for MoE models)",
           COUNT, cost=True),
    # -- what training reached
    _fraction("accuracy", "test accuracy", "higher", "seeded",
              "test accuracy of the weights with the best dev accuracy"),
    _fraction("dev_accuracy", "dev accuracy", "higher", "seeded",
              "best dev accuracy seen during training (selects the weights)"),
    _fraction("majority_accuracy", "majority rate", "neither", "deterministic",
              "what always answering the test split's most frequent class scores"),
    Metric("train_loss_final", "final training loss", "nats", "lower", "seeded", "training",
           "mean training loss (cross-entropy plus aux loss) over the last eval interval",
           Display("number", 4)),
    Metric("best_step", "best step", "step", "neither", "deterministic", "training",
           "training step of the selected (best-dev) weights", COUNT),
    Metric("train_stopped_at_step", "stopped at step (time budget)", "step", "neither",
           "environment", "training",
           "the last training step done when train.time_budget_s ran out before train.steps; "
           "absent when every step ran", COUNT),
    Metric("loss_curve", "training loss curve", "nats", "lower", "seeded", "training",
           "mean training loss of each eval interval", Display("number", 4), "curve"),
    Metric("dev_curve", "dev accuracy curve", "fraction", "higher", "seeded", "training",
           "[step, dev accuracy] at each evaluation", PERCENT, "curve"),
    Metric("train_loss_curve", "training loss", "nats", "lower", "seeded", "training",
           "[step, mean training loss since the previous point], every max(1, steps // 100) "
           "steps and at the last", Display("number", 4), "curve"),
    Metric("dev_curve_examples", "training examples seen", "count", "neither", "deterministic",
           "training", "training examples seen at each evaluation of dev_curve "
           "(x flops_train_per_example = cumulative training FLOPs)", COUNT, "curve"),
    Metric("dev_curve_train_s", "training-step time", "s", "lower", "timing", "training",
           "cumulative wall seconds of the training steps at each evaluation of dev_curve "
           "(evaluations excluded)", SI, "curve"),
    Metric("train_time_s", "training time", "s", "lower", "timing", "training",
           "wall time of the training loop, dev evaluations included", SI),
    Metric("train_compute_s", "training compute time", "s", "lower", "timing", "training",
           "wall time of the training steps alone", SI),
    Metric("examples_per_s", "training examples/s", "1/s", "higher", "timing", "throughput",
           "training examples per second of train_compute_s (the whole run)", NUMBER),
    # -- FLOPs of the measured batch
    _flops("flops_fwd_per_example", "forward FLOPs per example",
           "forward FLOPs counted as they ran (FlopCounterMode and our formulas), per example"),
    _flops("flops_fwd_per_example_analytic", "analytic forward FLOPs per example",
           "the sum of every part's closed-form FLOP formula for the same forward"),
    _flops("flops_fwd_per_example_fvcore", "fvcore forward FLOPs per example",
           "fvcore's count of the same forward as 2 x its multiply-adds (the cross-check)"),
    _flops("flops_fwd_per_example_calflops", "forward FLOPs per example (calflops)",
           "what calflops 0.3.2, the UoE paper's counter, reports for the same forward: the "
           "functions it patches (F.linear, matmul, addmm, baddbmm, einsum, softmax, norms, "
           "activations, mul, add) by its formulas; not @, mm, bmm, SDPA or grouped GEMMs, so it "
           "depends on which functions a model's code calls"),
    _flops("flops_fwd_per_example_linear_only", "forward FLOPs per example (F.linear only)",
           "older records only (replaced by flops_fwd_per_example_calflops): FLOPs of F.linear "
           "calls alone, once taken for calflops' convention",
           replaced_by="flops_fwd_per_example_calflops"),
    _flops("flops_train_per_example", "training FLOPs per example",
           "forward plus backward FLOPs of one training step, counted, per example"),
    Metric("flops_fwd_by_op", "forward FLOPs by op", "FLOP", "lower", "deterministic", "flops",
           "counted forward FLOPs per example of each aten op", SI4, "mapping"),
    Metric("flops_fwd_analytic_components", "analytic FLOPs by component", "FLOP", "lower",
           "deterministic", "flops", "analytic forward FLOPs per example of each part component",
           SI4, "mapping"),
    _note("flops_unformulated_ops", "ops without a FLOP formula", "deterministic", "diagnostics",
          "matmul-like ops that ran without a formula; the counted figures are then absent"),
    _note("flops_analytic_missing", "parts without a FLOP formula", "deterministic",
          "diagnostics", "parts that raised NoAnalyticFlops; the analytic figure is then absent"),
    _note("fvcore_unsupported_ops", "ops fvcore skipped", "deterministic", "diagnostics",
          "op -> occurrences fvcore counted as 0", "mapping"),
    _note("fvcore_error", "fvcore failure", "deterministic", "diagnostics",
          "why fvcore could not trace the model (its cross-check is then absent)"),
    _note("flops_fvcore_disagreement", "fvcore disagreement", "deterministic", "diagnostics",
          "why fvcore's forward figure differs from the counted one"),
    _note("gemm_kernels", "grouped-GEMM paths", "deterministic", "diagnostics",
          "part -> the grouped-GEMM implementation it ran on the measured batch", "mapping"),
    # -- latency and speed of one training step and one inference batch
    *_latency("train_step", "training step"),
    *_latency("infer", "inference batch"),
    Metric("train_steps_per_s", "training steps/s", "1/s", "higher", "timing", "throughput",
           "1 / the median training-step latency", NUMBER,
           samples="latency_train_step_s_samples", inverse_samples=True),
    Metric("train_steps_per_cpu_s", "training steps per CPU s", "1/CPU s", "higher", "timing",
           "throughput", "1 / the median training-step CPU time (CPU runs only)", NUMBER,
           samples="cpu_time_train_step_s_samples", inverse_samples=True),
    # -- memory
    _memory("memory_peak_train_bytes", "peak training memory",
            "peak memory of one training step (how: memory_method)"),
    _memory("memory_peak_infer_bytes", "peak inference memory",
            "peak memory of one inference batch (how: memory_method)"),
    _memory("memory_reserved_train_bytes", "reserved training memory",
            "peak bytes the CUDA caching allocator reserved in a training step (CUDA only)"),
    _memory("memory_reserved_infer_bytes", "reserved inference memory",
            "peak bytes the CUDA caching allocator reserved in an inference batch (CUDA only)"),
    _memory("memory_peak_training_loop_cuda_bytes", "peak training-loop memory (CUDA)",
            "peak allocated CUDA bytes over the whole training loop (CUDA only)"),
    _memory("memory_peak_training_loop_cuda_reserved_bytes", "reserved training-loop memory",
            "peak reserved CUDA bytes over the whole training loop (CUDA only)"),
    _note("memory_method", "memory method", "environment", "memory",
          "how the peak memory was read (CUDA allocator, or the CPU profiler)"),
    # -- the machine while the cell ran
    Metric("load_avg_1m_before", "load before", "", "lower", "environment", "machine",
           "1-minute load average when the cell started", NUMBER),
    Metric("load_avg_1m_after", "load after", "", "lower", "environment", "machine",
           "1-minute load average when the cell ended", NUMBER),
    _note("machine_busy", "busy machine", "environment", "machine",
          "set when the load exceeded the core count: the cell's timings are noise"),
    _note("numerics", "numerics", "environment", "machine",
          "training dtype, autocast and the torch.backends switches in force", "mapping"),
)  # fmt: skip
