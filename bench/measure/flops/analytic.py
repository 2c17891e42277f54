"""The analytic FLOPs of a forward: every part's own formula, summed over the calls it made.

Each part (`models.layers.parts.Part`) and the classification (or language-model) head give
the FLOPs of one call from its input shape (and, for a part, the aux that call returned).
`analytic_flops` hooks the outermost of them, so a composite part (`models.layers.composite`) is
counted once, through its own formula (the sum of its children's), and its children are not
counted again. The kernels the calls ran (`PartAux.kernel`, a composite's children's included)
are collected on the way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from models.layers.heads import ClassificationHead
from models.layers.language_model import LanguageModelHead
from models.layers.parts import NoAnalyticFlops, Part, kernel_paths


@dataclass(frozen=True)
class AnalyticFlops:
    """components: summed analytic FLOPs per component name; missing: "module (Type): why" of
    every part that has no formula (then the components undercount and are not a figure);
    kernels: module name -> the grouped-GEMM implementation(s) its calls ran (`PartAux.kernel`,
    routed parts only, a composite's routed children under their own module names; several
    calls that ran different paths are joined with "+")."""

    components: Mapping[str, float]
    missing: tuple[str, ...]
    kernels: Mapping[str, str] = field(default_factory=dict)


def analytic_flops(model: nn.Module, fn: Callable[[], Any]) -> AnalyticFlops:
    """Run `fn()` and add up, for every call of every part (`models.layers.parts.Part`) and of
    the classification head, the FLOPs its `analytic_flops` gives for that call's input shape
    (and, for a part, the aux that call returned). A dual encoder calls each part twice: both
    calls count. Only the outermost counted modules are hooked, so nothing is counted twice.
    """
    totals: dict[str, float] = defaultdict(float)
    missing: dict[str, str] = {}
    kernels: dict[str, list[str]] = defaultdict(list)

    def hook(name: str) -> Callable[[nn.Module, tuple, Any], None]:
        def add(module: nn.Module, args: tuple, output: Any) -> None:
            shape = args[0].shape
            if isinstance(module, Part):
                for path, kernel in kernel_paths(output[1], name).items():
                    kernels[path].append(kernel)
            try:
                counts = (
                    module.analytic_flops(shape, output[1])
                    if isinstance(module, Part)
                    else module.analytic_flops(shape)
                )
            except NoAnalyticFlops as exc:
                missing[name] = f"{name} ({type(module).__name__}): {exc}"
                return
            for component, value in counts.items():
                totals[component] += float(value)

        return add

    hooks = [m.register_forward_hook(hook(n)) for n, m in _outermost_counted(model)]
    try:
        fn()
    finally:
        for handle in hooks:
            handle.remove()
    joined = {name: "+".join(dict.fromkeys(ran)) for name, ran in kernels.items()}
    return AnalyticFlops(dict(totals), tuple(missing.values()), joined)


def _outermost_counted(model: nn.Module) -> list[tuple[str, nn.Module]]:
    found: list[tuple[str, nn.Module]] = []
    prefixes: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(p) for p in prefixes):
            continue
        if isinstance(module, Part | ClassificationHead | LanguageModelHead):
            found.append((name, module))
            prefixes.append(f"{name}." if name else "")
    return found
