"""DeepSeek's parts: DeepSeekMoE's fine-grained routed experts beside always-active shared experts
(arXiv 2401.06066), DeepSeek-V3's sigmoid router with auxiliary-loss-free bias balancing, and its
Multi-head Latent Attention (arXiv 2412.19437).

`routing` holds the router math (pure functions of the router logits), `moe` the FFN parts built
on the shared MoE machinery (`models.moe`, `models.kernels`, `models.layers.composite`), `mla`
the attention part.
"""
