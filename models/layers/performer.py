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

Causal form (`causal=True`, a language model): unidirectional FAVOR+, query i summing over keys
j <= i only, by prefix sums (the Performer paper's section on unidirectional attention). The
key stabilizer above is a maximum over the whole sequence; with the stabilizer `eps` added after
it, it does not cancel exactly, so a later key with a larger exponent would rescale every
earlier key's features against eps and move earlier outputs (the paper's and lucidrains' causal
code keep that whole-sequence maximum). Here query i uses M_i, the running maximum over the real
keys j <= i, so what query i sees is, exactly, the bidirectional formula applied to the prefix
[0..i]:

    y_i = sum_{j<=i} w_ij v_j / sum_{j<=i} w_ij,   w_ij = phi(q_i) . (exp(k_j - M_i) + eps)

with exp(k_j - M_i) = exp(M_j - M_i) exp(k_j - M_j), every factor <= 1. It is computed in
chunks of `chunk_size` positions: inside a chunk as a masked (C x C) product, across chunks
through a running state (sum_j exp(M_j - M) phi(k_j) v_j^T, rescaled when M grows), so time and
memory stay linear in L. The ReLU kernel has no maximum (M = 0) and is plain prefix sums.

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
CAUSAL_CHUNK = 64  # positions per chunk of the causal form (module doc)


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
        causal: bool = False,
        chunk_size: int = CAUSAL_CHUNK,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        if kernel not in DEFAULT_EPS:
            raise ValueError(f"unknown kernel {kernel!r}; choose one of {sorted(DEFAULT_EPS)}")
        if redraw_interval < 0:
            raise ValueError(f"redraw_interval must be >= 0 (0 = never), got {redraw_interval}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.heads = heads
        self.head_dim = dim // heads
        self.num_features = num_features
        self.seed = seed
        self.kernel = kernel
        self.orthogonal = orthogonal
        self.redraw_interval = redraw_interval
        self.eps = DEFAULT_EPS[kernel] if eps is None else eps
        self.causal = causal
        self.chunk_size = chunk_size
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

    def causal_features(
        self, q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scaled q, k (B, H, L, Dh), mask (B, L) -> (query features (B, H, L, m) with eps
        added, key features exp(k_j - M_j) (B, H, L, m) without eps, zero at padding, and the
        running maximum M (B, H, L, 1); softmax kernel; ReLU: relu(W k) and M = 0)."""
        projection = self.projection.to(q.dtype)
        key_mask = mask[:, None, :, None]  # (B, 1, L, 1)
        if self.kernel == "relu":
            q_feat = relu_kernel_features(q, projection) + self.eps
            k_unit = relu_kernel_features(k, projection) * key_mask
            return q_feat, k_unit, k.new_zeros(*k.shape[:-1], 1)
        q_exp = softmax_kernel_exponent(q, projection)  # (B, H, L, m)
        k_exp = softmax_kernel_exponent(k, projection)  # (B, H, L, m)
        q_feat = torch.exp(q_exp - q_exp.amax(dim=-1, keepdim=True).detach()) + self.eps
        real_k = k_exp.masked_fill(~key_mask, float("-inf"))
        running = real_k.amax(dim=-1, keepdim=True).cummax(dim=-2).values.detach()  # (B,H,L,1)
        # Before the first real key there is nothing to scale (a left-padded row): use 0.
        running = running.masked_fill(running == float("-inf"), 0.0)
        k_unit = torch.exp(real_k - running)  # (B, H, L, m), 0 at padding
        return q_feat, k_unit, running

    def _causal_attention(
        self,
        q_feat: torch.Tensor,
        k_unit: torch.Tensor,
        running: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """Unidirectional FAVOR+ (module doc) in chunks: features (B, H, L, m), running max
        (B, H, L, 1), v (B, H, L, Dh), mask (B, L) -> (B, H, L, Dh)."""
        batch, heads, length, m = k_unit.shape
        real = mask[:, None, :, None].to(v.dtype)  # (B, 1, L, 1)
        state = v.new_zeros(batch, heads, m, v.shape[-1])  # sum exp(M_j - M) phi(k_j) v_j^T
        normalizer = v.new_zeros(batch, heads, m, 1)  # sum exp(M_j - M) phi(k_j)
        value_sum = v.new_zeros(batch, heads, 1, v.shape[-1])  # sum of real v_j (eps term)
        count = v.new_zeros(batch, 1, 1, 1)  # real keys so far (eps term)
        reference = running.new_zeros(batch, heads, 1, 1)  # the M the state is scaled to
        outputs = []
        for start in range(0, length, self.chunk_size):
            span = slice(start, min(start + self.chunk_size, length))
            q_c, k_c, m_c = q_feat[:, :, span], k_unit[:, :, span], running[:, :, span]
            v_c, r_c = v[:, :, span] * real[:, :, span], real[:, :, span]  # padding v: 0
            size = q_c.shape[2]
            eps_q = self.eps * q_c.sum(-1, keepdim=True)  # (B, H, C, 1): phi(q_i) . eps
            # Earlier chunks, scaled from their M to this query's.
            carry = torch.exp(reference - m_c)  # (B, H, C, 1), <= 1
            numerator = carry * (q_c @ state) + eps_q * value_sum  # (B, H, C, Dh)
            denominator = carry * (q_c @ normalizer) + eps_q * count  # (B, H, C, 1)
            # This chunk: key j <= query i, scaled by exp(M_j - M_i).
            later = torch.ones(size, size, dtype=torch.bool, device=v.device).triu(1)  # (C, C)
            gap = (m_c.transpose(-2, -1) - m_c).masked_fill(later, float("-inf"))  # (B,H,C,C)
            allowed = (~later).to(v.dtype) * r_c.transpose(-2, -1)  # (B, 1, C, C)
            weights = (q_c @ k_c.transpose(-2, -1)) * torch.exp(gap) + eps_q * allowed
            numerator = numerator + weights @ v_c  # (B, H, C, Dh)
            denominator = denominator + weights.sum(-1, keepdim=True)  # (B, H, C, 1)
            outputs.append(numerator / denominator)
            # Fold this chunk into the state, rescaled to the chunk's last M.
            last = m_c[:, :, -1:]  # (B, H, 1, 1)
            decay = torch.exp(reference - last)  # (B, H, 1, 1)
            scaled = k_c * torch.exp(m_c - last)  # (B, H, C, m)
            state = decay * state + scaled.transpose(-2, -1) @ v_c  # (B, H, m, Dh)
            normalizer = decay * normalizer + scaled.sum(-2)[..., None]  # (B, H, m, 1)
            value_sum = value_sum + v_c.sum(-2, keepdim=True)
            count = count + r_c.sum(-2, keepdim=True)
            reference = last
        return torch.cat(outputs, dim=2)  # (B, H, L, Dh)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        self._advance()
        batch, length, dim = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.heads, self.head_dim)  # (B, L, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, L, Dh)
        scale = self.head_dim**-0.25
        if self.causal:
            with phase(FEATURE_MAP):
                q_feat, k_unit, running = self.causal_features(q * scale, k * scale, mask)
            with phase(ATTENTION):
                y = self._causal_attention(q_feat, k_unit, running, v, mask)  # (B, H, L, Dh)
            y = y.transpose(1, 2).reshape(batch, length, dim)  # (B, L, D)
            return self.out(y), NO_AUX
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
        """Forward FLOPs of a call on x (B, L, D) (2 per multiply-add, matmuls only); the
        causal form's chunks add the (C x C) products inside each chunk."""
        batch, length, dim = x_shape
        m = self.num_features
        rows = batch * length
        if self.causal:
            full, tail = divmod(length, self.chunk_size)
            square = full * self.chunk_size**2 + tail**2  # sum over chunks of C^2
            return {
                "qkv_proj": 2.0 * rows * dim * 3 * dim,
                "feature_map": 2.0 * 2 * rows * dim * m,
                "attn_kv": 2.0 * rows * m * dim,  # state update phi(K_c)^T V_c
                "attn_values": 2.0 * rows * m * dim,  # phi(Q_c) state
                "attn_normalizer": 2.0 * rows * self.heads * m,  # phi(Q_c) normalizer
                "attn_chunk_scores": 2.0 * batch * self.heads * square * m,
                "attn_chunk_values": 2.0 * batch * square * dim,
                "out_proj": 2.0 * rows * dim * dim,
            }
        return {
            "qkv_proj": 2.0 * rows * dim * 3 * dim,
            "feature_map": 2.0 * 2 * rows * dim * m,  # W q and W k, every head
            "attn_kv": 2.0 * rows * m * dim,  # phi(K)^T V
            "attn_values": 2.0 * rows * m * dim,  # phi(Q) (phi(K)^T V)
            "attn_normalizer": 2.0 * rows * self.heads * m,  # phi(Q) sum_j phi(k_j)
            "out_proj": 2.0 * rows * dim * dim,
        }
