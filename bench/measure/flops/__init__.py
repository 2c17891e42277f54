"""FLOPs of a model, four ways, one module each:

- `counted`: what actually ran (`FlopCounterMode` plus `FORMULAS` for the ops it misses), with a
  guard that names a matmul-like op without a formula instead of counting it as 0;
- `analytic`: the sum of every part's own formula (`models.layers.parts.Part.analytic_flops`)
  over the calls a forward made, and the grouped-GEMM kernel each routed part ran;
- `linear_only`: the FLOPs of `nn.Linear` layers only (calflops, the UoE paper's convention);
- `fvcore_check`: fvcore's count (2 x its multiply-adds), the independent cross-check.

Convention everywhere: 2 FLOPs per multiply-add, matmul-like ops only (no elementwise, softmax,
norm, bias). The names below are re-exported so a caller needs one import.
"""

from bench.measure.flops.analytic import AnalyticFlops, analytic_flops
from bench.measure.flops.counted import FORMULAS, FlopCount, MissingFlopFormula, count_flops
from bench.measure.flops.fvcore_check import FvcoreCount, fvcore_flops
from bench.measure.flops.linear_only import LinearFlopCounter

__all__ = [
    "FORMULAS",
    "AnalyticFlops",
    "FlopCount",
    "FvcoreCount",
    "LinearFlopCounter",
    "MissingFlopFormula",
    "analytic_flops",
    "count_flops",
    "fvcore_flops",
]
