"""The language-modelling suite: next-token prediction with every model in its causal form.

Tasks: `stdlib` (the default: the Python standard library's source, byte level, no download),
`wikitext103` (word level, perplexity) and `enwik8` (byte level, bits per byte); the last two read
their official files from --data-dir or from where `bench data download TASK` put them, and
record `skipped` with where they looked when absent. A model without a causal form records its
cells `skipped` with the reason; every trained cell runs the causality probe, and a model that
leaks the future is marked in the report and never ranked.
"""

from __future__ import annotations

from suites.lm.corpora import WIKITEXT103_VOCAB, load_enwik8, load_wikitext103
from suites.lm.metrics import LM_METRICS
from suites.lm.scales import LM_SCALES
from suites.lm.stdlib_corpus import BYTE_VOCAB, load_stdlib
from suites.registry import register_suite
from suites.spec import SuiteSpec, TaskSpec

TASKS = [
    TaskSpec(
        "stdlib",
        "lm",
        "the Python standard library's .py source, byte level (bits/byte; no download)",
        num_classes=BYTE_VOCAB,
        vocab_size=BYTE_VOCAB,
        num_inputs=1,
        load=load_stdlib,
        causal=True,
    ),
    TaskSpec(
        "wikitext103",
        "lm",
        "WikiText-103, word level (perplexity)",
        num_classes=WIKITEXT103_VOCAB,
        vocab_size=WIKITEXT103_VOCAB,
        num_inputs=1,
        load=load_wikitext103,
        causal=True,
    ),
    TaskSpec(
        "enwik8",
        "lm",
        "enwik8, the first 100 MB of an English Wikipedia dump, byte level (bits/byte)",
        num_classes=BYTE_VOCAB,
        vocab_size=BYTE_VOCAB,
        num_inputs=1,
        load=load_enwik8,
        causal=True,
    ),
]

register_suite(
    SuiteSpec(
        name="lm",
        description="language modelling: stdlib source (bytes), WikiText-103, enwik8",
        tasks=tuple(t.name for t in TASKS),
        scales=LM_SCALES,
        metrics=LM_METRICS,
    ),
    TASKS,
)
