"""The library: model config and registry, the shared encoder (`layers`) and its parts, the
grouped-GEMM kernels (`kernels`), the MoE layers (`moe`) and UoE (`uoe`). Imports nothing from
`baselines`, `suites` or `bench`."""
