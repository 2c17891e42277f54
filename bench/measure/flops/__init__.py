"""FLOPs of a model, four ways, one module each:

- `counted`: what actually ran (`FlopCounterMode` plus `FORMULAS` for the ops it misses), with a
  guard that names a matmul-like op without a formula instead of counting it as 0;
- `analytic`: the sum of every part's own formula (`models.layers.parts.Part.analytic_flops`)
  over the calls a forward made, and the grouped-GEMM kernel each routed part ran;
- `calflops_convention`: what calflops 0.3.2 reports (the UoE paper's counter): the calls it
  patches (F.linear, torch.matmul, baddbmm, einsum, softmax, norms, activations, mul/add), by its
  formulas; not `@`, mm, bmm, SDPA or grouped GEMMs;
- `fvcore_check`: fvcore's count (2 x its multiply-adds), the independent cross-check.

Convention everywhere but calflops': 2 FLOPs per multiply-add, matmul-like ops only (no
elementwise, softmax, norm, bias). The names below are re-exported so a caller needs one import.
"""

from bench.measure.flops.analytic import AnalyticFlops, analytic_flops
from bench.measure.flops.calflops_convention import CalflopsCounter
from bench.measure.flops.counted import FORMULAS, FlopCount, MissingFlopFormula, count_flops
from bench.measure.flops.fvcore_check import FvcoreCount, fvcore_flops

__all__ = [
    "FORMULAS",
    "AnalyticFlops",
    "CalflopsCounter",
    "FlopCount",
    "FvcoreCount",
    "MissingFlopFormula",
    "analytic_flops",
    "count_flops",
    "fvcore_flops",
]
