"""Token-choice mixture-of-experts FFN parts shared by the Switch and Mixtral baselines.

`routing` turns router logits into per-token expert choices and gates (top-1 with capacity for
Switch, top-k renormalised for Mixtral) plus the auxiliary losses and load statistics;
`experts` runs the chosen experts through the grouped-GEMM kernels (`models.kernels`).
"""
