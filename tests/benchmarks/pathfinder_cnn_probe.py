"""Is our Pathfinder learnable at all? A small CNN trained on the very splits `bench run` uses.

A pixel-level transformer at a CPU budget sits on Pathfinder's long chance-level plateau (loss
ln 2, 50 %); so do many published reruns on GPUs (google-research/long-range-arena#37). That
alone cannot tell a training budget from broken data (labels that the pixels do not carry). A
convolutional net has the locality prior the task rewards and leaves the plateau within a few
thousand steps, so its dev accuracy well above 50 % says the labels are in the images, for the
generator drawn. It is a diagnostic of the data, not a model of the registry and not LRA's
protocol: its figures go beside, never into, a benchmark table.

Data: `load_pathfinder` with the `small` preset's sizes (or --n-train), from the cache `bench
run` fills (generated first if absent). Net: three blocks of two 3x3 conv + BatchNorm + ReLU
(32, 64, 128 channels) each followed by 2x2 max pooling, then 128 hidden units and 2 logits;
AdamW (lr 1e-3 unless --lr), weight decay 1e-4, batch 64, one intra-op thread, seeded.

    python -m tests.benchmarks.pathfinder_cnn_probe --generator lra --steps 2000
    python -m tests.benchmarks.pathfinder_cnn_probe --generator intended --steps 2000 --out FILE.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tabulate import tabulate
from torch import nn

from bench.cache_dir import HOME_CACHE, resolve_cache_dir
from suites.data import DataRequest, Split
from suites.lra.pathfinder.draw import GENERATORS
from suites.lra.pathfinder.load import load_pathfinder

SIZE = 32  # Pathfinder-32


def _images(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = split.inputs[0].reshape(-1, 1, SIZE, SIZE).float() / 255.0  # (N, 1, 32, 32)
    return pixels, split.labels  # labels (N,)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


def probe_net() -> nn.Sequential:
    """(N, 1, 32, 32) pixels in [0, 1] -> (N, 2) logits."""
    return nn.Sequential(
        _block(1, 32),  # (N, 32, 16, 16)
        _block(32, 64),  # (N, 64, 8, 8)
        _block(64, 128),  # (N, 128, 4, 4)
        nn.Flatten(),
        nn.Linear(128 * 4 * 4, 128),
        nn.ReLU(),
        nn.Linear(128, 2),
    )


@torch.no_grad()
def accuracy(net: nn.Module, pixels: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    pred = torch.cat([net(pixels[i : i + 500]).argmax(1) for i in range(0, len(pixels), 500)])
    net.train()
    return (pred == labels).float().mean().item()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", choices=GENERATORS, default=GENERATORS[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--n-train", type=int, default=10_000, help="training images (small: 10k)")
    ap.add_argument(
        "--cache-dir", type=Path, default=None, help=f"default: $BENCH_CACHE_DIR or {HOME_CACHE}"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    request = DataRequest(
        max_len=SIZE * SIZE,
        n_train=args.n_train,
        n_dev=1000,
        n_test=1000,
        seed=0,
        cache_dir=resolve_cache_dir(args.cache_dir),
        data_dir=None,
        generator=args.generator,
    )
    data = load_pathfinder(request)
    (x_train, y_train), dev, test = _images(data.train), _images(data.dev), _images(data.test)
    net = probe_net()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    batch, rows, losses = 64, [], []
    start = time.perf_counter()
    order, cursor = torch.randperm(len(x_train)), 0
    for step in range(1, args.steps + 1):
        if cursor + batch > len(x_train):  # a new epoch: a new order
            order, cursor = torch.randperm(len(x_train)), 0
        idx = order[cursor : cursor + batch]
        cursor += batch
        loss = F.cross_entropy(net(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % args.eval_every == 0 or step == args.steps:
            recent = losses[-args.eval_every :]
            row = [step, step * batch, sum(recent) / len(recent), 100 * accuracy(net, *dev)]
            rows.append([*row, time.perf_counter() - start])
            print(f"step {row[0]}: train loss {row[2]:.4f}, dev {row[3]:.1f} %", flush=True)
    test_acc = 100 * accuracy(net, *test)
    headers = ["step", "examples seen", "train loss (interval mean)", "dev acc %", "elapsed s"]
    table = tabulate(rows, headers=headers, tablefmt="github", floatfmt=".4g")
    text = (
        f"Pathfinder-32 CNN probe, generator {args.generator}, {args.n_train} training images, "
        f"batch {batch}, lr {args.lr:g}, {args.threads} thread(s): test acc {test_acc:.1f} % after "
        f"{args.steps} steps ({data.source})\n\n{table}\n"
    )
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
