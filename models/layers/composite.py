"""A part made of parts: named child parts that all take the part's input, their outputs combined
(summed by default: DeepSeekMoE's shared expert adds its output to the routed experts').

`CompositePart` satisfies the part contract (`models.layers.parts`) for its children, so a
model file writes no aux merging and no FLOP formula of its own:

- forward: every child runs on the same `(x, mask)`; `combine` joins their outputs (the sum).
- aux (`merge_aux`): `loss` is the sum of the children's losses (None when none has one);
  `stats` is the union of the children's statistics under their own names, so a routed child's
  `tokens_per_expert`, `load_cv`, ... reach the records and the expert-load plots as the part's;
  two children reporting the same statistic raise (a record holds one value per name); each
  child's whole aux (its `sizes`, its `kernel`) stays under `children[name]`.
- `analytic_flops`: the sum of the children's formulas, each given its own aux, each component
  prefixed by its child's name (`shared.ffn_up`, `routed.router`).
- `phases`: the children's, in order, each once.

The measurements count the composite once (they hook the outermost parts) and find each child
under its module name (`encoder.blocks.0.ffn.routed`): its kernel (`parts.kernel_paths`), its
`gemm_kernel()` and `inactive_parameter_count()`. A composite defines neither of those two, so
nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

import torch
from torch import nn

from models.layers.parts import NoAnalyticFlops, Part, PartAux, check_part


class CompositePart(nn.Module):
    """Named child parts (`models.layers.parts.Part`), each a submodule under its name."""

    phases: tuple[str, ...] = ()
    part_names: tuple[str, ...] = ()

    def __init__(self, children: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if not children:
            raise ValueError(
                "a CompositePart needs child parts, e.g. CompositePart({'shared': DenseFFN(...), "
                "'routed': MoEFFN(...)})"
            )
        for name, child in children.items():
            if not name.isidentifier() or hasattr(self, name):
                raise ValueError(
                    f"child name {name!r}: use a Python identifier that is not an attribute of "
                    f"{type(self).__name__} (e.g. 'shared', 'routed')"
                )
            check_part(child, f"{type(self).__name__} child {name!r}:")
            self.add_module(name, child)
        self.part_names = tuple(children)
        self.phases = tuple(dict.fromkeys(p for child in children.values() for p in child.phases))

    def parts(self) -> Iterator[tuple[str, Part]]:
        """(name, child part) in order."""
        for name in self.part_names:
            yield name, self.get_submodule(name)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """x (B, L, D), mask (B, L) True = real -> the combined (B, L, D) and the merged aux."""
        outputs: dict[str, torch.Tensor] = {}
        auxes: dict[str, PartAux] = {}
        for name, child in self.parts():
            outputs[name], auxes[name] = child(x, mask)  # (B, L, D)
        return self.combine(outputs), merge_aux(auxes)

    def combine(self, outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The children's outputs, (B, L, D) each -> their sum (B, L, D). A subclass that
        combines otherwise with matmul-like work adds its FLOPs in `analytic_flops`."""
        first, *rest = outputs.values()
        for y in rest:
            first = first + y
        return first

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """The children's formulas for this call, each given its own aux (`aux.children`),
        components named `child.component`. A child without a formula makes the whole part
        lack one (`NoAnalyticFlops`, naming the child)."""
        counts: dict[str, float] = {}
        for name, child in self.parts():
            if name not in aux.children:
                raise KeyError(
                    f"the aux holds no child {name!r} (it has {sorted(aux.children)}): pass the "
                    "aux this part's forward returned"
                )
            try:
                own = child.analytic_flops(x_shape, aux.children[name])
            except NoAnalyticFlops as exc:
                raise NoAnalyticFlops(f"child {name!r} ({type(child).__name__}): {exc}") from exc
            counts.update({f"{name}.{component}": value for component, value in own.items()})
        return counts


def merge_aux(children: Mapping[str, PartAux]) -> PartAux:
    """One aux for a part made of `children` (name -> the aux of its call): losses summed,
    statistics merged (`MergedStats`), every child's aux kept under `children`."""
    losses = [a.loss for a in children.values() if a.loss is not None]
    loss = None
    for child_loss in losses:
        loss = child_loss if loss is None else loss + child_loss
    stats = MergedStats({name: a.stats for name, a in children.items()})
    return PartAux(loss=loss, stats=stats, children=MappingProxyType(dict(children)))


class MergedStats(Mapping[str, torch.Tensor]):
    """The union of several children's statistics, each key read from the child that reports
    it. Keys are checked at once; values are read only on access, so a child's lazy statistics
    (`models.layers.lazy_stats`) stay uncomputed until someone reads them."""

    def __init__(self, children: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        self._source: dict[str, Mapping[str, torch.Tensor]] = {}
        owner: dict[str, str] = {}
        for name, stats in children.items():
            for key in stats:
                if key in owner:
                    raise ValueError(
                        f"children {owner[key]!r} and {name!r} both report the statistic "
                        f"{key!r}; a composite part passes its children's statistics up under "
                        "their own names, one value per name: let one child report it (e.g. one "
                        "routed child beside dense ones), or merge them in a part of your own"
                    )
                owner[key] = name
                self._source[key] = stats

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self._source:
            raise KeyError(f"no routing statistic {key!r}; there are {list(self._source)}")
        return self._source[key][key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)
