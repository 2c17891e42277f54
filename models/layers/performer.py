"""Performer attention: linear-time attention through random features (FAVOR+), with the softmax
kernel (positive orthogonal random features, models/layers/kernel_attention.py) or the
"generalized" ReLU kernel relu(W x) that the LRA code uses by default; `num_features` features
per head, one projection shared by the heads of a layer (as in the paper's code). The
`performer` and `performer_relu` models (baselines/performer.py) use it as their mixer.

Per head, with q and k scaled by d^(-1/4) (so that q.k becomes q.k / sqrt(d)):

    y_i = phi(q_i) . sum_j phi(k_j) v_j^T  /  phi(q_i) . sum_j phi(k_j)      (real keys j only)

Numerical stability as in the paper's implementation: before exponentiating, each query's
exponent has its own maximum over features subtracted, and the keys' exponents the maximum over
all real keys and features of the (batch, head); both constants cancel between numerator and
denominator. A small stabilizer (`eps`) is then added to every feature, so that the denominator
cannot underflow; the 1/sqrt(m) factor of the estimator is left out because it cancels too.
Padded keys have their features zeroed after the map, so they contribute nothing (and never
enter the maximum). There is no attention matrix, so `attn_dropout` has nothing to act on and
is not applied.

Features are drawn from explicit generators (seed, draw number), never the global RNG.
`redraw_interval` > 0 redraws them every that many training forwards (a dual encoder makes two
per step); the count is kept in the module's state_dict (extra state), so a reloaded model
continues the same sequence of draws.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from models.layers.kernel_attention import (
    feature_generator,
    gaussian_projection,
    relu_kernel_features,
    softmax_kernel_exponent,
)
from models.layers.parts import NO_AUX, PartAux
from models.layers.ranges import ATTENTION, FEATURE_MAP, phase

Kernel = Literal["softmax", "relu"]
DEFAULT_EPS: dict[str, float] = {"softmax": 1e-6, "relu": 1e-3}  # the paper code's stabilizers


class PerformerAttention(nn.Module):
    """Multi-head FAVOR+ attention; same qkv/out layout as models/layers/attention.py."""

    phases = (FEATURE_MAP, ATTENTION)

    def __init__(
        self,
        dim: int,
        heads: int,
        num_features: int,
        *,
        seed: int,
        kernel: Kernel = "softmax",
        orthogonal: bool = True,
        redraw_interval: int = 0,
        eps: float | None = None,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        if kernel not in DEFAULT_EPS:
            raise ValueError(f"unknown kernel {kernel!r}; choose one of {sorted(DEFAULT_EPS)}")
        if redraw_interval < 0:
            raise ValueError(f"redraw_interval must be >= 0 (0 = never), got {redraw_interval}")
        self.heads = heads
        self.head_dim = dim // heads
        self.num_features = num_features
        self.seed = seed
        self.kernel = kernel
        self.orthogonal = orthogonal
        self.redraw_interval = redraw_interval
        self.eps = DEFAULT_EPS[kernel] if eps is None else eps
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.train_calls = 0
        self.draw = 0
        self.register_buffer("projection", self._draw(0))  # (m, Dh)

    def _draw(self, draw: int) -> torch.Tensor:
        generator = feature_generator(self.seed, draw)
        return gaussian_projection(
            self.num_features, self.head_dim, generator, orthogonal=self.orthogonal
        )

    def redraw(self, draw: int) -> None:
        """Replace the features by draw number `draw` of this module's seed."""
        # A new tensor, not an in-place copy: a graph still holding the old one stays valid.
        self.projection = self._draw(draw).to(self.projection.device)
        self.draw = draw

    def get_extra_state(self) -> torch.Tensor:
        # A tensor, not a dict of ints: torch.jit tracing (fvcore) takes state_dict values as
        # graph inputs and accepts only tensors.
        return torch.tensor([self.train_calls, self.draw], dtype=torch.int64)

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.train_calls, self.draw = (int(v) for v in state.tolist())

    def _advance(self) -> None:
        if not (self.training and self.redraw_interval):
            return
        if self.train_calls and self.train_calls % self.redraw_interval == 0:
            self.redraw(self.train_calls // self.redraw_interval)
        self.train_calls += 1

    def features(
        self, q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled q, k (B, H, L, Dh), mask (B, L) -> stabilized features (B, H, L, m) each;
        padded keys' features are zero."""
        projection = self.projection.to(q.dtype)
        key_mask = mask[:, None, :, None]  # (B, 1, L, 1)
        if self.kernel == "softmax":
            q_exp = softmax_kernel_exponent(q, projection)  # (B, H, L, m)
            k_exp = softmax_kernel_exponent(k, projection)  # (B, H, L, m)
            q_max = q_exp.amax(dim=-1, keepdim=True).detach()  # (B, H, L, 1)
            real_k = k_exp.masked_fill(~key_mask, float("-inf"))
            k_max = real_k.amax(dim=(-2, -1), keepdim=True).detach()  # (B, H, 1, 1)
            q_feat = torch.exp(q_exp - q_max) + self.eps
            k_feat = torch.exp(k_exp - k_max) + self.eps
        else:
            q_feat = relu_kernel_features(q, projection) + self.eps
            k_feat = relu_kernel_features(k, projection) + self.eps
        return q_feat, k_feat * key_mask

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        self._advance()
        batch, length, dim = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.heads, self.head_dim)  # (B, L, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, L, Dh)
        scale = self.head_dim**-0.25
        with phase(FEATURE_MAP):
            q_feat, k_feat = self.features(q * scale, k * scale, mask)  # (B, H, L, m)
        with phase(ATTENTION):
            kv = k_feat.transpose(-2, -1) @ v  # (B, H, m, Dh)
            numerator = q_feat @ kv  # (B, H, L, Dh)
            k_sum = k_feat.sum(dim=-2)  # (B, H, m)
            denominator = q_feat @ k_sum[..., None]  # (B, H, L, 1)
        y = (numerator / denominator).transpose(1, 2).reshape(batch, length, dim)  # (B, L, D)
        return self.out(y), NO_AUX

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """Forward FLOPs of a call on x (B, L, D) (2 per multiply-add, matmuls only)."""
        batch, length, dim = x_shape
        m = self.num_features
        rows = batch * length
        return {
            "qkv_proj": 2.0 * rows * dim * 3 * dim,
            "feature_map": 2.0 * 2 * rows * dim * m,  # W q and W k, every head
            "attn_kv": 2.0 * rows * m * dim,  # phi(K)^T V
            "attn_values": 2.0 * rows * m * dim,  # phi(Q) (phi(K)^T V)
            "attn_normalizer": 2.0 * rows * self.heads * m,  # phi(Q) sum_j phi(k_j)
            "out_proj": 2.0 * rows * dim * dim,
        }
