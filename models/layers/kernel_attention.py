"""Random-feature maps for kernelized (Performer) attention, and the draw of their projections.

FAVOR+ (Choromanski et al., "Rethinking Attention with Performers", 2021) replaces the softmax
kernel exp(q.k) by an inner product of positive random features:

    phi(x) = exp(W x - |x|^2 / 2) / sqrt(m),   W (m, d) with rows w_i ~ N(0, I_d),

for which E[phi(q) . phi(k)] = exp(q.k) exactly. Orthogonal random features draw the rows in
blocks of d mutually orthogonal directions (lower variance, same marginals): each block is the Q
of a QR decomposition of a Gaussian matrix (signs fixed so that Q is Haar-distributed), and each
row is rescaled by the length of an independent Gaussian vector (chi_d), so every single row is
still distributed as N(0, I_d).

Every draw takes an explicit `torch.Generator`; nothing here reads or advances the global RNG.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def feature_generator(seed: int, draw: int) -> torch.Generator:
    """A CPU generator for draw number `draw` of the features seeded by `seed`.

    The pair is hashed (numpy SeedSequence), so nearby seeds and draws give unrelated streams.
    """
    state = np.random.SeedSequence([seed, draw]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def gaussian_projection(
    num_features: int, dim: int, generator: torch.Generator, *, orthogonal: bool = True
) -> torch.Tensor:
    """(num_features, dim) float32 matrix whose rows are each distributed as N(0, I_dim).

    orthogonal: rows come in blocks of `dim` mutually orthogonal rows (the last block is cut to
    size); otherwise all rows are independent Gaussians.
    """
    if num_features < 1 or dim < 1:
        raise ValueError(f"need num_features >= 1 and dim >= 1, got {num_features}, {dim}")
    if not orthogonal:
        return torch.randn(num_features, dim, generator=generator)  # (m, d)
    num_blocks = math.ceil(num_features / dim)
    gaussian = torch.randn(num_blocks, dim, dim, generator=generator)  # (n, d, d)
    q, r = torch.linalg.qr(gaussian)  # one batched call
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]  # Haar: diag(R) > 0
    directions = q.transpose(-2, -1).reshape(num_blocks * dim, dim)[:num_features]  # (m, d)
    lengths = torch.randn(num_features, dim, generator=generator).norm(dim=1)  # (m,) ~ chi_d
    return directions * lengths[:, None]


def softmax_kernel_exponent(x: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """The exponent of the positive softmax features: W x - |x|^2 / 2.

    x (..., L, d), projection (m, d) -> (..., L, m). exp of it, divided by sqrt(m), is phi(x).
    """
    projected = x @ projection.T  # (..., L, m)
    half_norm = 0.5 * (x * x).sum(dim=-1, keepdim=True)  # (..., L, 1); elementwise, no matmul
    return projected - half_norm


def softmax_kernel_features(x: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """phi(x) = exp(W x - |x|^2 / 2) / sqrt(m), unstabilized: the unbiased estimator itself.

    x (..., L, d), projection (m, d) -> (..., L, m); E[phi(q) . phi(k)] = exp(q . k).
    """
    exponent = softmax_kernel_exponent(x, projection)  # (..., L, m)
    return torch.exp(exponent) / math.sqrt(projection.shape[0])


def relu_kernel_features(x: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """ReLU random features (Performer's "generalized" kernel): relu(W x). (..., L, m)."""
    return torch.relu(x @ projection.T)
